"""Caller context (owner, company, status or opportunity) per number, and Aircall's tags.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caller_contexts",
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=18), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("e164"),
    )
    op.create_table(
        "aircall_tags",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("aircall_tags")
    op.drop_table("caller_contexts")
