"""volume types: Cinder's types with extra specs (__DEFAULT__ a real one), and each volume's

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DEFAULT_NAME = "__DEFAULT__"
DEFAULT_ID = uuid.uuid5(uuid.NAMESPACE_URL, "bootvol:volume-type:__DEFAULT__").hex


def upgrade() -> None:
    types = op.create_table(
        "volume_types",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        sa.Column("is_public", sa.Boolean, nullable=False),
        sa.Column("extra_specs", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(
        types,
        [
            {
                "id": DEFAULT_ID,
                "name": DEFAULT_NAME,
                "description": "Default Volume Type",
                "is_public": True,
                "extra_specs": {},
                "created_at": dt.datetime.now(dt.UTC),
            }
        ],
    )
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("volume_type_id", sa.String(36)))
    op.execute(sa.text("UPDATE volumes SET volume_type_id = :id").bindparams(id=DEFAULT_ID))


def downgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("volume_type_id")
    op.drop_table("volume_types")
