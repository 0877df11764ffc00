"""The ``clouds.yaml`` an operator's clients read (os-client-config's format).

Written into the data folder with mode 0600, since it holds the admin password; other
clouds already in the file are kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CLOUD_NAME = "bootvol"
FILE_NAME = "clouds.yaml"


def cloud_entry(*, auth_url: str, username: str, password: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": auth_url,
            "username": username,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
        "interface": "public",
        "identity_api_version": 3,
        "volume_api_version": 3,
        "image_api_version": 2,
    }


def read_password(path: Path, *, cloud: str = CLOUD_NAME) -> str | None:
    """The password of ``cloud`` in an existing file, if any."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    password = data.get("clouds", {}).get(cloud, {}).get("auth", {}).get("password")
    return password if isinstance(password, str) else None


def write_cloud(path: Path, entry: dict[str, Any], *, cloud: str = CLOUD_NAME) -> None:
    """Set ``cloud`` in the file (0600), keeping the file's other clouds."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    data.setdefault("clouds", {})[cloud] = entry
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # also when the temporary file existed already
        yaml.safe_dump(data, out, sort_keys=False)
    temporary.replace(path)


def render(entry: dict[str, Any], *, cloud: str = CLOUD_NAME) -> str:
    return yaml.safe_dump({"clouds": {cloud: entry}}, sort_keys=False)


def without_password(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry to show: a password printed lands in terminals' scrollback and journals."""
    auth = {key: value for key, value in entry["auth"].items() if key != "password"}
    return {**entry, "auth": auth}
