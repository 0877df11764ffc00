"""identity (projects, users, roles, tokens), image and volume ownership, volume claims

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Rows that exist before this revision were made by the operator's CLI: their images become
``public`` with no owner, their volumes have no project (see bootvol.db.models).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("domain_id", sa.String(64), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("quota_volumes", sa.Integer, nullable=False),
        sa.Column("quota_gigabytes", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("domain_id", "name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain_id", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column(
            "default_project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="SET NULL"),
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("domain_id", "name"),
    )
    op.create_table(
        "role_assignments",
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(16), primary_key=True),
    )
    op.create_table(
        "tokens",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("methods", sa.JSON, nullable=False),
        sa.Column("audit_id", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tokens_expires_at", "tokens", ["expires_at"])

    # Plain ADD COLUMNs with constant server defaults: SQLite and PostgreSQL both take them
    # in place, and the defaults fill the rows made before this revision.
    op.add_column("images", sa.Column("owner", sa.String(64)))
    op.add_column(
        "images",
        sa.Column("visibility", sa.String(16), nullable=False, server_default="public"),
    )
    op.add_column(
        "images", sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column(
        "images", sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("images", sa.Column("min_disk", sa.Integer, nullable=False, server_default="0"))
    op.add_column("images", sa.Column("min_ram", sa.Integer, nullable=False, server_default="0"))
    op.add_column("images", sa.Column("tags", sa.JSON))
    op.add_column("images", sa.Column("properties", sa.JSON))
    op.create_index("ix_images_owner", "images", ["owner"])

    op.add_column("volumes", sa.Column("project_id", sa.String(64)))
    op.add_column("volumes", sa.Column("user_id", sa.String(64)))
    op.add_column("volumes", sa.Column("description", sa.Text))
    op.add_column("volumes", sa.Column("user_metadata", sa.JSON))
    op.add_column(
        "volumes", sa.Column("bootable", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("volumes", sa.Column("source_volid", sa.String(36)))
    op.add_column(
        "volumes",
        sa.Column("availability_zone", sa.String(255), nullable=False, server_default="nova"),
    )
    op.add_column("volumes", sa.Column("image_metadata", sa.JSON))
    op.add_column("volumes", sa.Column("claimed_by", sa.String(255)))
    op.add_column("volumes", sa.Column("claimed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_volumes_project_id", "volumes", ["project_id"])
    op.create_index("ix_volumes_status", "volumes", ["status"])


def downgrade() -> None:
    op.drop_index("ix_volumes_status", "volumes")
    op.drop_index("ix_volumes_project_id", "volumes")
    with op.batch_alter_table("volumes") as batch:
        for column in (
            "claimed_at",
            "claimed_by",
            "image_metadata",
            "availability_zone",
            "source_volid",
            "bootable",
            "user_metadata",
            "description",
            "user_id",
            "project_id",
        ):
            batch.drop_column(column)
    op.drop_index("ix_images_owner", "images")
    with op.batch_alter_table("images") as batch:
        for column in (
            "properties",
            "tags",
            "min_ram",
            "min_disk",
            "hidden",
            "protected",
            "visibility",
            "owner",
        ):
            batch.drop_column(column)
    op.drop_table("tokens")
    op.drop_table("role_assignments")
    op.drop_table("users")
    op.drop_table("projects")
