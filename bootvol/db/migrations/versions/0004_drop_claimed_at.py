"""drop volumes.claimed_at: written by every claim, read by nothing (the lease says enough)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("claimed_at")


def downgrade() -> None:
    op.add_column("volumes", sa.Column("claimed_at", sa.DateTime(timezone=True)))
