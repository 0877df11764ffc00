"""The load benchmark's short version: 20 creations at once from 2 projects against a
running service with 2 workers, half from an uncached image; none may be lost."""

from __future__ import annotations

import os
from pathlib import Path

from bootvol.bench.load import LoadOptions, run_load


def test_twenty_creations_at_once_none_lost(mounts: dict[str, Path]) -> None:
    folder = mounts["xfs_a"] / f"load-{os.urandom(3).hex()}"  # folder FlexVols on XFS: reflinks
    result = run_load(LoadOptions(volumes=20, projects=2, workers=2, image_mib=16, folder=folder))
    assert result.failed_requests == []
    assert result.failed_volumes == []
    assert result.wrong_content == []
    assert len(result.times) == 20
    # The uncached image reached each FlexVol's cache exactly once.
    assert result.uncached_fills and set(result.uncached_fills.values()) == {1}
    assert result.passed
    figures = result.to_dict()
    assert figures["volumes_per_s"] > 0
    # Not compared with "seconds": the last volume may be made before its 202 is read.
    assert figures["accepted_s"] > 0
