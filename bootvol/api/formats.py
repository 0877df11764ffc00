"""Timestamps as each service writes them (clients parse these exact shapes)."""

from __future__ import annotations

import datetime as dt

from bootvol.db.models import as_utc


def keystone_time(moment: dt.datetime) -> str:
    """Keystone: ``2015-08-27T09:49:58.000000Z`` (microseconds, Z)."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def glance_time(moment: dt.datetime | None) -> str | None:
    """Glance: ``2016-06-29T16:13:07Z`` (whole seconds, Z)."""
    return None if moment is None else as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def cinder_time(moment: dt.datetime | None) -> str | None:
    """Cinder: ``2018-11-29T06:50:07.770785`` (microseconds, naive UTC)."""
    return (
        None
        if moment is None
        else as_utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds")
    )
