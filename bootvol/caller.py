"""Who asks: the scope every service call is made in.

The API builds a Caller from a validated token; the operator's ``bootvol`` CLI acts as
OPERATOR, which sees and may change everything. Services decide visibility from it; they
never see tokens or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootvol.errors import Forbidden


@dataclass(frozen=True)
class Caller:
    project_id: str | None  # None only for the operator
    user_id: str | None = None
    is_admin: bool = False
    # Holds Keystone's ``service`` role: another OpenStack service (Cinder) acting for its
    # users. It widens only what OpenStack's default policies give ``role:service``.
    is_service: bool = False

    @property
    def is_operator(self) -> bool:
        return self.project_id is None

    @property
    def sees_everything(self) -> bool:
        """Admins and the operator see every project's images and volumes by id."""
        return self.is_admin or self.is_operator

    def require_admin(self, rule: str) -> None:
        """What OpenStack's default policy ``rule`` keeps for admins (and the operator)."""
        if not self.sees_everything:
            raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


OPERATOR = Caller(project_id=None, is_admin=True)
