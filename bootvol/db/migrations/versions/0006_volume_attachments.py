"""volume attachments: data volumes hot-plugged into servers, and Cinder's attach actions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volume_attachments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("server_id", sa.String(36), index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("device", sa.String(64)),
        sa.Column("host", sa.String(255)),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("delete_on_termination", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True)),
    )
    # A boot volume in use before this revision is attached to its server as /dev/vda.
    op.execute(
        """
        INSERT INTO volume_attachments
            (id, volume_id, server_id, status, device, host, mode, delete_on_termination,
             created_at, attached_at)
        SELECT s.id, s.root_volume_id, s.id, 'attached', '/dev/vda', s.host, 'rw',
               s.delete_on_termination, s.created_at, s.launched_at
        FROM servers s JOIN volumes v ON v.id = s.root_volume_id
        WHERE v.status = 'in-use'
        """
    )


def downgrade() -> None:
    op.drop_table("volume_attachments")
