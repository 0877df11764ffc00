"""What Cinder's and Nova's ``os-quota-sets`` routes share: who may read and change a
project's quotas.

Both services' default policies agree: a project's own members (readers) and admins see its
quotas; only admins change them. A refusal is 403 and names the policy rule, as both say it
("Policy doesn't allow <rule> to be performed.").
"""

from __future__ import annotations

from bootvol.caller import Caller
from bootvol.errors import Forbidden


def check_may_read(caller: Caller, project_id: str, *, rule: str) -> None:
    """A project's quotas are shown to its own members and to admins."""
    if project_id != caller.project_id and not caller.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def check_may_change(caller: Caller, *, rule: str) -> None:
    """Quotas are changed by admins only."""
    if not caller.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")
