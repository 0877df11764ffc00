"""snapshots: Cinder's volume snapshots (reflinks beside their volume), their quota, and a
volume's snapshot_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("volume_id", sa.String(36), nullable=False, index=True),
        sa.Column("name", sa.String(255)),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size_gib", sa.BigInteger, nullable=False),
        sa.Column("flexvol", sa.String(255), nullable=False),
        sa.Column("file", sa.Text),
        sa.Column("file_format", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(64), index=True),
        sa.Column("user_id", sa.String(64)),
        sa.Column("user_metadata", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("quota_snapshots", sa.Integer, nullable=False, server_default="10")
        )
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("snapshot_id", sa.String(36)))


def downgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("snapshot_id")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("quota_snapshots")
    op.drop_table("snapshots")
