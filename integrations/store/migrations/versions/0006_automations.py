"""Automations (versioned), step effects, field mappings, disposition rules, suppressed numbers.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("builtin", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("builtin"),
    )
    op.create_index("ix_automations_trigger", "automations", ["trigger"])
    op.create_table(
        "automation_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("automation_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("saved_by", sa.String(length=254), nullable=False),
        sa.Column("saved_at", sa.Float(), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["automation_id"], ["automations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("automation_id", "version", name="uq_automation_versions_version"),
    )
    op.create_index(
        "ix_automation_versions_automation_id", "automation_versions", ["automation_id"]
    )
    op.create_table(
        "automation_effects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "step", name="uq_automation_effects_step"),
    )
    op.create_table(
        "field_mappings",
        sa.Column("sobject", sa.String(length=80), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=254), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sobject"),
    )
    op.create_table(
        "disposition_rules",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("lead_status", sa.String(length=255), nullable=True),
        sa.Column("contact_status", sa.String(length=255), nullable=True),
        sa.Column("opportunity_stage", sa.String(length=255), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=254), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "suppressed_numbers",
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=True),
        sa.Column("call_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("e164"),
    )


def downgrade() -> None:
    op.drop_table("suppressed_numbers")
    op.drop_table("disposition_rules")
    op.drop_table("field_mappings")
    op.drop_table("automation_effects")
    op.drop_index("ix_automation_versions_automation_id", "automation_versions")
    op.drop_table("automation_versions")
    op.drop_index("ix_automations_trigger", "automations")
    op.drop_table("automations")
