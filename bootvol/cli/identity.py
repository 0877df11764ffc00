"""`bootvol project …` and `bootvol user …`: the API's projects, users and roles."""

from __future__ import annotations

import typer

from bootvol.cli import output
from bootvol.cli.context import bootvol
from bootvol.db.models import ProjectRecord, Role

project_app = typer.Typer(help="Projects (tenants) and their quotas.", no_args_is_help=True)
user_app = typer.Typer(help="Users and their roles on projects.", no_args_is_help=True)


@project_app.command("create")
def create_project(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Project name."),
    description: str | None = typer.Option(None, "--description"),
    volumes: int | None = typer.Option(None, "--volumes", help="Quota: volumes (-1: no limit)."),
    gigabytes: int | None = typer.Option(
        None, "--gigabytes", help="Quota: GiB of volumes (-1: no limit)."
    ),
    json_: bool = output.JsonOption,
) -> None:
    """Create a project."""
    project = bootvol(ctx).identity.create_project(
        name, description=description, quota_volumes=volumes, quota_gigabytes=gigabytes
    )
    view = _project_view(project)
    output.emit_json(view) if json_ else output.print_fields(f"project {name}", view)


@project_app.command("list")
def list_projects(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """List projects with their quotas."""
    projects = [_project_view(p) for p in bootvol(ctx).identity.list_projects()]
    if json_:
        output.emit_json(projects)
        return
    output.table(
        "projects",
        ["id", "name", "volumes", "gigabytes", "instances", "cores", "ram MiB"],
        [
            (
                p["id"],
                p["name"],
                p["quota_volumes"],
                p["quota_gigabytes"],
                p["quota_instances"],
                p["quota_cores"],
                p["quota_ram_mib"],
            )
            for p in projects
        ],
    )


@project_app.command("set-quota")
def set_quota(
    ctx: typer.Context,
    project: str = typer.Argument(..., help="Project id or name."),
    volumes: int | None = typer.Option(None, "--volumes", help="Volumes (-1: no limit)."),
    gigabytes: int | None = typer.Option(None, "--gigabytes", help="GiB (-1: no limit)."),
    instances: int | None = typer.Option(None, "--instances", help="Servers (-1: no limit)."),
    cores: int | None = typer.Option(None, "--cores", help="vCPUs (-1: no limit)."),
    ram: int | None = typer.Option(None, "--ram", help="RAM in MiB (-1: no limit)."),
    json_: bool = output.JsonOption,
) -> None:
    """Change a project's quotas (Cinder's volumes and gigabytes, Nova's instances, cores
    and ram); those not given are kept."""
    record = bootvol(ctx).identity.set_quotas(
        project,
        volumes=volumes,
        gigabytes=gigabytes,
        instances=instances,
        cores=cores,
        ram_mib=ram,
    )
    view = _project_view(record)
    output.emit_json(view) if json_ else output.print_fields(f"project {record.name}", view)


@user_app.command("create")
def create_user(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name."),
    project: str = typer.Option(..., "--project", help="Project id or name."),
    password: str = typer.Option(
        ..., "--password", prompt=True, hide_input=True, help="Password (prompted if absent)."
    ),
    role: Role = typer.Option(Role.MEMBER, "--role", help="Role on the project."),
    json_: bool = output.JsonOption,
) -> None:
    """Create a user with a role on a project (its default project)."""
    user = bootvol(ctx).identity.create_user(name, password=password, project=project, role=role)
    view = {
        "id": user.id,
        "name": user.name,
        "default_project_id": user.default_project_id,
        "role": str(role),
    }
    output.emit_json(view) if json_ else output.print_fields(f"user {name}", view)


@user_app.command("list")
def list_users(ctx: typer.Context, json_: bool = output.JsonOption) -> None:
    """List users."""
    users = [
        {"id": u.id, "name": u.name, "default_project_id": u.default_project_id}
        for u in bootvol(ctx).identity.list_users()
    ]
    if json_:
        output.emit_json(users)
        return
    output.table(
        "users",
        ["id", "name", "default project"],
        [(u["id"], u["name"], u["default_project_id"]) for u in users],
    )


@user_app.command("set-password")
def set_password(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User id or name."),
    password: str = typer.Option(
        ..., "--password", prompt=True, hide_input=True, help="New password."
    ),
) -> None:
    """Set a user's password (its open tokens end)."""
    user = bootvol(ctx).identity.set_password(name, password)
    output.console.print(f"password of user {user.name} changed")


@user_app.command("grant")
def grant(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User id or name."),
    project: str = typer.Option(..., "--project", help="Project id or name."),
    role: Role = typer.Option(Role.MEMBER, "--role"),
) -> None:
    """Give a user a role on another project."""
    bootvol(ctx).identity.grant(user=name, project=project, role=role)
    output.console.print(f"user {name} has role {role} on {project}")


def _project_view(project: ProjectRecord) -> dict[str, object]:
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "quota_volumes": project.quota_volumes,
        "quota_gigabytes": project.quota_gigabytes,
        "quota_instances": project.quota_instances,
        "quota_cores": project.quota_cores,
        "quota_ram_mib": project.quota_ram_mib,
    }
