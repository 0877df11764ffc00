"""`bootvol bench --boot`: how the measured boots print (bootvol.bench.boot measures)."""

from __future__ import annotations

from rich.console import Console

from bootvol.bench.boot_results import BootBenchResult, BootCase, Figures
from bootvol.cli import output

_CASE_TITLES = {
    BootCase.DOWNLOAD: "alone, image not cached",
    BootCase.CACHE_CLONE: "alone, image cached",
}
_COLUMNS = [
    "servers",
    "boot volume",
    "volume s",
    "domain start s",
    "→ ACTIVE s",
    "→ guest line s",
    "guest boot s",
    "host bytes",
]


def print_boot_result(console: Console, result: BootBenchResult) -> None:
    storm = result.storm
    count = len(storm.samples)
    rows = [
        _row(f"{_CASE_TITLES[case]} (x{len(found.samples)})", str(case), found.median)
        for case, found in result.cases.items()
    ]
    paths = ", ".join(f"{n} {path}" for path, n in storm.paths.items())
    rows.append(_row(f"{count} at once: median", paths, storm.median))
    rows.append(_row(f"{count} at once: max", paths, storm.slowest))
    output.table(
        f"bootvol bench --boot ({result.accel}, {result.flavor}): seconds, → from the "
        "request; medians unless said",
        _COLUMNS,
        rows,
        to=console,
    )
    console.print(
        f"guest: {result.guest}; FlexVols: {result.cluster}. One at a time: each server "
        "boots alone, from an image new to every FlexVol (not cached), then from the same "
        f"image again (cached). Storm: {count} "
        f"requests sent in {storm.requests_s:.2f} s, the compute host builds them one after "
        f"another; all ACTIVE {storm.all_active_s:.2f} s and every guest's line "
        f"{storm.all_guest_lines_s:.2f} s after the first request. host bytes: image bytes "
        "through bootvol or its qemu-img."
    )
    verdict = {True: "[green]once[/green]", False: "[red]MORE THAN ONCE[/red]"}
    output.table(
        f"boot storm: the image fetched per FlexVol ({count} servers from one uncached image)",
        ["flexvol", "boot volumes", "downloads (HTTP)", "cache fills", "fetched"],
        [
            (f.flexvol, f.servers, f.downloads, f.cache_fills, verdict[f.fetched_once])
            for f in storm.flexvols
        ],
        to=console,
    )
    output.print_targets(console, result.targets())
    for problem in result.problems:
        console.print(f"[bold red]FAIL[/bold red] {problem}", highlight=False)


def _row(servers: str, path: str, figures: Figures) -> tuple[str, ...]:
    return (
        servers,
        path,
        _seconds(figures.volume_s),
        _seconds(figures.domain_s),
        _seconds(figures.to_active_s),
        _seconds(figures.to_guest_line_s),
        _seconds(figures.guest_boot_s),
        output.human_bytes(figures.host_bytes),
    )


def _seconds(value: float) -> str:
    return f"{value:.4f}" if value < 10 else f"{value:.2f}"
