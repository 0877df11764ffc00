"""images: disk_format may be unset, as Glance's is until the client sets it (queued)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.alter_column("disk_format", existing_type=sa.String(16), nullable=True)


def downgrade() -> None:
    op.execute(sa.text("UPDATE images SET disk_format = 'raw' WHERE disk_format IS NULL"))
    with op.batch_alter_table("images") as batch:
        batch.alter_column("disk_format", existing_type=sa.String(16), nullable=False)
