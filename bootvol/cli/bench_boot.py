"""`bootvol bench --boot`: how the measured boots print (bootvol.bench.boot measures)."""

from __future__ import annotations

from rich.console import Console

from bootvol.bench.boot_results import BootBenchResult, BootCase, Figures
from bootvol.cli import output

_CASE_TITLES = {
    BootCase.DOWNLOAD: "one server, image only at its URL",
    BootCase.CACHE_CLONE: "one server, image cached",
}
_COLUMNS = [
    "what",
    "servers",
    "boot volume",
    "volume s",
    "domain start s",
    "request → ACTIVE s",
    "request → guest line s",
    "guest boot s",
    "host bytes",
]


def print_boot_result(console: Console, result: BootBenchResult) -> None:
    storm = result.storm
    count = len(storm.samples)
    rows = [
        _row(_CASE_TITLES[case], f"{len(found.samples)} (median)", str(case), found.median)
        for case, found in result.cases.items()
    ]
    paths = ", ".join(f"{path} {n}" for path, n in storm.paths.items())
    rows.append(_row(f"boot storm: {count} at once, median", str(count), paths, storm.median))
    rows.append(_row(f"boot storm: {count} at once, max", str(count), paths, storm.slowest))
    output.table(
        f"bootvol bench --boot: seconds from the request ({result.accel}, {result.flavor}; "
        f"{result.cluster})",
        _COLUMNS,
        rows,
        to=console,
    )
    console.print(
        f"guest: {result.guest}. Each single server boots alone; its image is new to every "
        f"FlexVol in the download row. Boot storm: all {count} ACTIVE "
        f"{storm.all_active_s:.2f} s and every guest's line {storm.all_guest_lines_s:.2f} s "
        f"after the first request (requests sent in {storm.requests_s:.2f} s). host bytes: "
        "image bytes through bootvol or its qemu-img."
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
    for problem in result.problems:
        console.print(f"[bold red]FAIL[/bold red] {problem}", highlight=False)


def _row(what: str, servers: str, path: str, figures: Figures) -> tuple[str, ...]:
    return (
        what,
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
