"""Salesforce triggers T01-T05: deliveries, polling watermarks, our own writes; A01 contact links

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "salesforce_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=3), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("notification_id", sa.String(length=18), nullable=True),
        sa.Column("action_id", sa.String(length=18), nullable=True),
        sa.Column("sobject", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("stamp", sa.String(length=20), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
        sa.UniqueConstraint("notification_id"),
    )
    op.create_index(
        "ix_salesforce_deliveries_record_id", "salesforce_deliveries", ["record_id"], unique=False
    )
    op.create_table(
        "salesforce_poll_watermarks",
        sa.Column("trigger", sa.String(length=3), nullable=False),
        sa.Column("sobject", sa.String(length=80), nullable=False),
        sa.Column("stamp", sa.String(length=20), nullable=True),
        sa.Column("polled_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("trigger", "sobject"),
    )
    op.create_table(
        "salesforce_own_writes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sobject", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("written_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_salesforce_own_writes_record_id", "salesforce_own_writes", ["record_id"], unique=False
    )
    op.create_index(
        "ix_salesforce_own_writes_written_at", "salesforce_own_writes", ["written_at"], unique=False
    )
    op.create_table(
        "aircall_contact_links",
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("sobject", sa.String(length=80), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("linked_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(
        "ix_aircall_contact_links_contact_id", "aircall_contact_links", ["contact_id"], unique=False
    )
    op.create_table(
        "aircall_phone_claims",
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("e164"),
    )


def downgrade() -> None:
    op.drop_table("aircall_phone_claims")
    op.drop_index("ix_aircall_contact_links_contact_id", table_name="aircall_contact_links")
    op.drop_table("aircall_contact_links")
    op.drop_index("ix_salesforce_own_writes_written_at", table_name="salesforce_own_writes")
    op.drop_index("ix_salesforce_own_writes_record_id", table_name="salesforce_own_writes")
    op.drop_table("salesforce_own_writes")
    op.drop_table("salesforce_poll_watermarks")
    op.drop_index("ix_salesforce_deliveries_record_id", table_name="salesforce_deliveries")
    op.drop_table("salesforce_deliveries")
