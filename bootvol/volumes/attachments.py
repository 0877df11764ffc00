"""Volume attachments: which server a volume is attached to, and the status that follows.

One attachment per volume (bootvol has no multiattach). Each change is one transaction
that moves the attachment and settles the volume's status from its attachments, so the
two never disagree:

    no attachment            → available
    reserved                 → reserved    (Cinder's attachments API: made, not connected)
    attaching                → attaching   (os-reserve; a hot-plug under way)
    attached                 → in-use
    detaching                → detaching   (os-begin_detaching; an unplug under way)

Who drives them: bootvol's compute host (a boot volume is attached as ``/dev/vda`` when
its server is built; a data volume is reserved ``attaching`` by the compute API, then
plugged and completed by the host), and a compute service of the operator's own through
Cinder's volume actions (``os-reserve``, ``os-attach``, ``os-detach``…) and attachments API.
A volume with an attachment is not deleted (the volume service refuses: not available).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from bootvol.db.models import (
    AttachStatus,
    VolumeAttachmentRecord,
    VolumeRecord,
    VolumeStatus,
    utcnow,
)
from bootvol.db.session import SessionFactory
from bootvol.errors import Conflict, InvalidRequest, NotFound

log = logging.getLogger(__name__)

# The volume's status for its attachment's (the table in the module's docstring).
_VOLUME_STATUS = {
    AttachStatus.RESERVED: VolumeStatus.RESERVED,
    AttachStatus.ATTACHING: VolumeStatus.ATTACHING,
    AttachStatus.ATTACHED: VolumeStatus.IN_USE,
    AttachStatus.DETACHING: VolumeStatus.DETACHING,
}
_ATTACHABLE = (VolumeStatus.AVAILABLE,)


class VolumeAttachments:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    # reading -------------------------------------------------------------------------------
    def get(self, attachment_id: str) -> VolumeAttachmentRecord:
        with self._sessions() as session:
            record = session.get(VolumeAttachmentRecord, attachment_id)
        if record is None:
            raise NotFound(f"Attachment {attachment_id} could not be found.")
        return record

    def of_volume(self, volume_id: str) -> list[VolumeAttachmentRecord]:
        return self._where(VolumeAttachmentRecord.volume_id == volume_id)

    def of_server(self, server_id: str) -> list[VolumeAttachmentRecord]:
        return self._where(VolumeAttachmentRecord.server_id == server_id)

    def of_servers(self, server_ids: Iterable[str]) -> list[VolumeAttachmentRecord]:
        return self._where(VolumeAttachmentRecord.server_id.in_(list(server_ids)))

    def of_project(self, project_id: str | None) -> list[VolumeAttachmentRecord]:
        """The attachments of the project's volumes (every project's with None)."""
        if project_id is None:
            return self._where()
        owned = select(VolumeRecord.id).where(VolumeRecord.project_id == project_id)
        return self._where(VolumeAttachmentRecord.volume_id.in_(owned))

    def pending(self, server_ids: Iterable[str]) -> list[VolumeAttachmentRecord]:
        """The plugs and unplugs under way on these servers (a compute host's work). A plug
        is one the compute API reserved: it alone names the device at reservation; Cinder's
        ``os-reserve`` and attachments API never do, so they cannot plug a disk into a
        server (anyone's) through its host."""
        return self._where(
            VolumeAttachmentRecord.server_id.in_(list(server_ids)),
            (
                (VolumeAttachmentRecord.status == AttachStatus.ATTACHING)
                & VolumeAttachmentRecord.device.is_not(None)
            )
            | (VolumeAttachmentRecord.status == AttachStatus.DETACHING),
        )

    def held_by(self, volume_id: str) -> str:
        """`` (attached to server …)`` when an attachment holds the volume: the why of a
        refusal, for messages."""
        with self._sessions() as session:
            return _held_by(session, volume_id)

    def _where(self, *conditions: ColumnElement[bool]) -> list[VolumeAttachmentRecord]:
        statement = (
            select(VolumeAttachmentRecord)
            .where(*conditions)
            .order_by(VolumeAttachmentRecord.created_at, VolumeAttachmentRecord.id)
        )
        with self._sessions() as session:
            return list(session.scalars(statement))

    # changes -------------------------------------------------------------------------------
    def reserve(
        self,
        volume_id: str,
        *,
        server_id: str | None,
        status: AttachStatus = AttachStatus.ATTACHING,
        device: str | None = None,
        host: str | None = None,
        delete_on_termination: bool = False,
    ) -> VolumeAttachmentRecord:
        """Take an available volume for a server: a new attachment in ``status``
        (``reserved``, ``attaching``, or ``attached`` at once for a boot volume), read-only
        (``ro``) when the volume's read-only flag is set, as Cinder records it."""
        attachment = VolumeAttachmentRecord(
            id=str(uuid.uuid4()),
            volume_id=volume_id,
            server_id=server_id,
            status=status,
            device=device,
            host=host,
            mode="rw",
            delete_on_termination=delete_on_termination,
            attached_at=utcnow() if status is AttachStatus.ATTACHED else None,
        )
        with self._sessions.begin() as session:
            taken = session.execute(
                update(VolumeRecord)
                .where(VolumeRecord.id == volume_id, VolumeRecord.status.in_(_ATTACHABLE))
                .values(status=_VOLUME_STATUS[status])
                .execution_options(synchronize_session=False)
            ).rowcount
            if not taken:
                volume = session.get(VolumeRecord, volume_id)
                if volume is None:
                    raise NotFound(f"Volume {volume_id} could not be found.")
                raise Conflict(
                    f"Invalid volume: volume {volume_id} is {volume.status}; only an "
                    "available volume can be attached" + _held_by(session, volume_id)
                )
            if session.scalar(select(VolumeRecord.readonly).where(VolumeRecord.id == volume_id)):
                attachment.mode = "ro"
            session.add(attachment)
        log.info(
            "volume %s %s to server %s%s",
            volume_id,
            "attached" if status is AttachStatus.ATTACHED else f"reserved ({status})",
            server_id,
            f" as {device}" if device else "",
        )
        return attachment

    def complete(
        self,
        attachment_id: str,
        *,
        server_id: str | None = None,
        device: str | None = None,
        host: str | None = None,
    ) -> VolumeAttachmentRecord:
        """The volume is connected: the attachment ``attached``, the volume ``in-use``."""
        changes: dict[str, object] = {"status": AttachStatus.ATTACHED, "attached_at": utcnow()}
        for name, value in (("server_id", server_id), ("device", device), ("host", host)):
            if value is not None:
                changes[name] = value
        return self._move(
            attachment_id,
            (AttachStatus.RESERVED, AttachStatus.ATTACHING, AttachStatus.ATTACHED),
            **changes,
        )

    def connect(self, attachment_id: str, *, host: str | None) -> VolumeAttachmentRecord:
        """A reserved attachment gets its connector: ``attaching`` until completed."""
        return self._move(
            attachment_id,
            (AttachStatus.RESERVED, AttachStatus.ATTACHING),
            status=AttachStatus.ATTACHING,
            host=host,
        )

    def begin_detaching(self, attachment_id: str) -> VolumeAttachmentRecord:
        return self._move(attachment_id, (AttachStatus.ATTACHED,), status=AttachStatus.DETACHING)

    def roll_detaching(self, attachment_id: str) -> VolumeAttachmentRecord:
        """An unplug that did not happen: attached (and ``in-use``) again."""
        return self._move(attachment_id, (AttachStatus.DETACHING,), status=AttachStatus.ATTACHED)

    def remove(self, attachment_id: str) -> None:
        """The attachment is over (detached, unreserved, or its server is gone): the volume
        is ``available`` again. Removing one already gone does nothing."""
        with self._sessions.begin() as session:
            attachment = session.get(VolumeAttachmentRecord, attachment_id)
            if attachment is None:
                return
            session.delete(attachment)
            session.flush()
            _settle(session, attachment.volume_id)
        log.info("volume %s detached from server %s", attachment.volume_id, attachment.server_id)

    # Cinder's volume actions, by volume ------------------------------------------------------
    def attach(
        self,
        volume_id: str,
        *,
        server_id: str | None,
        device: str | None,
        host: str | None,
        mode: str = "rw",
    ) -> VolumeAttachmentRecord:
        """``os-attach``: complete the volume's reservation, or attach an available one;
        a read-write attachment of a read-only volume is refused."""
        with self._sessions() as session:
            readonly = session.scalar(
                select(VolumeRecord.readonly).where(VolumeRecord.id == volume_id)
            )
        if readonly and mode != "ro":
            raise InvalidRequest(
                f"Invalid attaching mode '{mode}' for volume {volume_id}: it is read-only"
            )
        pending = self._one(volume_id, (AttachStatus.RESERVED, AttachStatus.ATTACHING))
        if pending is None:
            return self.reserve(
                volume_id,
                server_id=server_id,
                status=AttachStatus.ATTACHED,
                device=device,
                host=host,
            )
        return self.complete(pending.id, server_id=server_id, device=device, host=host)

    def unreserve(self, volume_id: str) -> None:
        """``os-unreserve``: a reservation that will not be completed goes."""
        pending = self._one(volume_id, (AttachStatus.RESERVED, AttachStatus.ATTACHING))
        if pending is not None:
            self.remove(pending.id)

    def begin_detaching_volume(self, volume_id: str) -> VolumeAttachmentRecord:
        """``os-begin_detaching``: the volume's attachment is going (``detaching``)."""
        return self.begin_detaching(self._required(volume_id, AttachStatus.ATTACHED).id)

    def roll_detaching_volume(self, volume_id: str) -> VolumeAttachmentRecord:
        """``os-roll_detaching``: it is not going after all (``in-use`` again)."""
        return self.roll_detaching(self._required(volume_id, AttachStatus.DETACHING).id)

    def detach(self, volume_id: str, attachment_id: str | None = None) -> None:
        """``os-detach``: the attachment (the volume's only one when none is named) is over."""
        if attachment_id is None:
            attachments = self.of_volume(volume_id)
            if not attachments:
                raise Conflict(f"Invalid volume: volume {volume_id} is not attached")
            attachment_id = attachments[0].id
        elif self.get(attachment_id).volume_id != volume_id:
            raise NotFound(f"Attachment {attachment_id} could not be found.")
        self.remove(attachment_id)

    def _one(
        self, volume_id: str, statuses: tuple[AttachStatus, ...]
    ) -> VolumeAttachmentRecord | None:
        return next((a for a in self.of_volume(volume_id) if a.status in statuses), None)

    def _required(self, volume_id: str, status: AttachStatus) -> VolumeAttachmentRecord:
        found = self._one(volume_id, (status,))
        if found is None:
            raise Conflict(f"Invalid volume: volume {volume_id} has no {status} attachment")
        return found

    def _move(
        self, attachment_id: str, allowed: tuple[AttachStatus, ...], **changes: object
    ) -> VolumeAttachmentRecord:
        with self._sessions.begin() as session:
            attachment = session.get(VolumeAttachmentRecord, attachment_id)
            if attachment is None:
                raise NotFound(f"Attachment {attachment_id} could not be found.")
            if attachment.status not in allowed:
                wanted = " or ".join(str(status) for status in allowed)
                raise Conflict(
                    f"Invalid volume: attachment {attachment_id} of volume "
                    f"{attachment.volume_id} is {attachment.status}, not {wanted}"
                )
            for name, value in changes.items():
                setattr(attachment, name, value)
            session.flush()
            _settle(session, attachment.volume_id)
            return attachment


def _settle(session: Session, volume_id: str) -> None:
    """Set the volume's status from its attachment (none: available)."""
    attachment = session.scalars(
        select(VolumeAttachmentRecord).where(VolumeAttachmentRecord.volume_id == volume_id)
    ).first()
    status = VolumeStatus.AVAILABLE if attachment is None else _VOLUME_STATUS[attachment.status]
    session.execute(
        update(VolumeRecord)
        .where(VolumeRecord.id == volume_id)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )


def _held_by(session: Session, volume_id: str) -> str:
    """`` (attached to server …)`` when an attachment holds the volume: the why."""
    attachment = session.scalars(
        select(VolumeAttachmentRecord).where(VolumeAttachmentRecord.volume_id == volume_id)
    ).first()
    if attachment is None or attachment.server_id is None:
        return ""
    return f" (attached to server {attachment.server_id})"
