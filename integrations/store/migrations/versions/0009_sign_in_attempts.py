"""Sign-in attempts, counted to limit failed sign-ins per email and per client address.

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"  # 0008 may come from another branch of work: re-chain when both land
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_key", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_attempts_email", "sign_in_attempts", ["email_key", "at"])
    op.create_index("ix_sign_in_attempts_ip", "sign_in_attempts", ["ip", "at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_attempts_ip", table_name="sign_in_attempts")
    op.drop_index("ix_sign_in_attempts_email", table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
