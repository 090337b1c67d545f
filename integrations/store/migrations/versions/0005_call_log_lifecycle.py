"""Call-log lifecycle: what we wrote, pinned matches, agent mapping, org facts, creation locks.

Revision ID: 0005
Revises: 0003
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("ai_summary", sa.Text(), nullable=True))
    with op.batch_alter_table("sync_links") as batch:
        batch.add_column(sa.Column("written", sa.JSON(), nullable=True))
    with op.batch_alter_table("caller_matches") as batch:
        batch.add_column(
            sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("agent_users") as batch:
        batch.add_column(sa.Column("name", sqlmodel.AutoString(length=255), nullable=True))
        batch.add_column(
            sa.Column("manual", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "org_facts",
        sa.Column("key", sqlmodel.AutoString(length=80), nullable=False),
        sa.Column("value", sqlmodel.AutoString(length=255), nullable=False),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "creation_locks",
        sa.Column("key", sqlmodel.AutoString(length=40), nullable=False),
        sa.Column("holder", sqlmodel.AutoString(length=80), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("creation_locks")
    op.drop_table("org_facts")
    with op.batch_alter_table("agent_users") as batch:
        batch.drop_column("manual")
        batch.drop_column("name")
    with op.batch_alter_table("caller_matches") as batch:
        batch.drop_column("pinned")
    with op.batch_alter_table("sync_links") as batch:
        batch.drop_column("written")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("ai_summary")
