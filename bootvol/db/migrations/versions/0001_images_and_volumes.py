"""images and volumes

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("disk_format", sa.String(16), nullable=False),
        sa.Column("container_format", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("virtual_size", sa.BigInteger),
        sa.Column("checksum", sa.String(32)),
        sa.Column("os_hash_algo", sa.String(16)),
        sa.Column("os_hash_value", sa.String(128)),
        sa.Column("location", sa.Text),
        sa.Column("message", sa.Text),
        *_timestamps(),
    )
    op.create_index("ix_images_name", "images", ["name"])
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size_gib", sa.BigInteger, nullable=False),
        sa.Column("image_id", sa.String(36)),
        sa.Column("flexvol", sa.String(255)),
        sa.Column("file", sa.Text),
        sa.Column("file_format", sa.String(16), nullable=False),
        sa.Column("provisioning", sa.JSON),
        sa.Column("message", sa.Text),
        *_timestamps(),
    )
    op.create_index("ix_volumes_name", "volumes", ["name"])
    op.create_index("ix_volumes_image_id", "volumes", ["image_id"])


def downgrade() -> None:
    op.drop_table("volumes")
    op.drop_table("images")
