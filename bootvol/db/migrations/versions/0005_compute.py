"""compute: flavors, compute hosts, servers, and Nova's per-project quotas

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flavors",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("ram_mib", sa.Integer, nullable=False),
        sa.Column("disk_gib", sa.Integer, nullable=False),
        sa.Column("is_public", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "compute_hosts",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("ram_mib", sa.Integer, nullable=False),
        sa.Column("accel", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "servers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, index=True),
        sa.Column("project_id", sa.String(64), index=True),
        sa.Column("user_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("task_state", sa.String(32)),
        sa.Column("flavor_id", sa.String(255), nullable=False),
        sa.Column("flavor_name", sa.String(255), nullable=False),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("ram_mib", sa.Integer, nullable=False),
        sa.Column("disk_gib", sa.Integer, nullable=False),
        sa.Column("image_id", sa.String(36)),
        sa.Column("root_volume_id", sa.String(36)),
        sa.Column("root_volume_size_gib", sa.Integer),
        sa.Column("delete_on_termination", sa.Boolean, nullable=False),
        sa.Column("host", sa.String(255), index=True),
        sa.Column("fault_code", sa.Integer),
        sa.Column("fault_message", sa.Text),
        sa.Column("fault_at", sa.DateTime(timezone=True)),
        sa.Column("build", sa.JSON),
        sa.Column("user_metadata", sa.JSON),
        sa.Column("launched_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column, default in (("quota_instances", 10), ("quota_cores", 20), ("quota_ram_mib", 51200)):
        op.add_column(
            "projects",
            sa.Column(column, sa.Integer, nullable=False, server_default=str(default)),
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        for column in ("quota_ram_mib", "quota_cores", "quota_instances"):
            batch.drop_column(column)
    op.drop_table("servers")
    op.drop_table("compute_hosts")
    op.drop_table("flavors")
