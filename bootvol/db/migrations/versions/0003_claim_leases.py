"""claim leases: a claim expires unless renewed; attempts counts claims

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08

Claims made before this revision have no lease: they count as expired, so any worker takes
over volumes left ``creating`` by a server of an older version.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("volumes", sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    op.add_column("volumes", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("attempts")
        batch.drop_column("lease_expires_at")
