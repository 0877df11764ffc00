"""Byte units, defined once, and sizes as operators write them ("64k", "1M")."""

import re

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)(?:i?[bB])?\s*$")
_FACTOR = {"": 1, "k": KiB, "m": MiB, "g": GiB}


def parse_size(text: str | int) -> int:
    """Bytes from ``4096``, ``"4k"``, ``"1M"``, ``"1MiB"`` or ``"2G"`` (powers of 1024)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size: write bytes or a number with k, M or G (1M)")
    return int(match.group(1)) * _FACTOR[match.group(2).lower()]
