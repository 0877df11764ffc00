"""`bootvol bench`: every provisioning path side by side on a throwaway cluster."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from bootvol.bench.boot import BootOptions, run_boot_benchmark
from bootvol.bench.disk_images import ImageKind
from bootvol.bench.results import BenchPath, BenchResult, SizeResult, median, p95
from bootvol.bench.runner import BenchOptions, run_benchmark
from bootvol.cli import output
from bootvol.cli.bench_boot import print_boot_result
from bootvol.config import Acceleration
from bootvol.errors import BenchmarkFailed
from bootvol.storage.layout import DEFAULT_MIN_HOLE

_ROWS = (
    (BenchPath.DOWNLOAD, "download (http qcow2 → raw)"),
    (BenchPath.COPY_OFFLOAD, "copy-offload (raw)"),
    (BenchPath.COPY_OFFLOAD_QCOW2, "copy-offload (qcow2, converted on host)"),
    (BenchPath.DIRECT_CLONE, "direct-clone"),
    (BenchPath.CACHE_CLONE, "cache-clone"),
)
# Piped into a file or a README, the tables keep their rows on one line each.
_PIPED_WIDTH = 150


def bench(
    ctx: typer.Context,
    image: ImageKind = typer.Option(
        ImageKind.OS,
        "--image",
        help="The image measured: os (an ext4 filesystem of this machine's /usr files, as OS "
        "images are), sample (synthetic: data in every other MiB), guest (the bootable guest "
        "of scripts/guest-image, at its own size).",
    ),
    sizes: str = typer.Option(
        "1,4", "--sizes", help="Image sizes in GiB, comma-separated; fractions allowed (0.0625)."
    ),
    volumes: int = typer.Option(
        20, "--volumes", min=1, help="Volumes per clone path (direct-clone, cache-clone)."
    ),
    slow_volumes: int = typer.Option(
        3,
        "--slow-volumes",
        min=1,
        help="Volumes per path that moves the whole image (download, copy-offload).",
    ),
    api: bool = typer.Option(
        False,
        "--api",
        help="Also start the service and time POST /volumes → available over the Cinder API "
        "for an image already in a FlexVol (each volume a clone), one volume at a time "
        "(--volumes of them, on the first size).",
    ),
    boot: bool = typer.Option(
        False,
        "--boot",
        help="Boot servers instead (root, libvirt): request → ACTIVE and → the guest's first "
        "console line, image downloaded vs cached, and a boot storm of --servers.",
    ),
    servers: int = typer.Option(
        10, "--servers", min=1, help="--boot: servers in the boot storm, asked for at once."
    ),
    rounds: int = typer.Option(
        3, "--rounds", min=1, help="--boot: single servers per row (downloaded, cached)."
    ),
    accel: Acceleration = typer.Option(
        Acceleration.AUTO, "--accel", help="--boot: KVM, TCG, or auto (KVM where it runs)."
    ),
    guest_image: Path | None = typer.Option(
        None,
        "--guest-image",
        dir_okay=False,
        exists=True,
        help="--boot: a guest built by scripts/guest-image (default: build one for the run).",
    ),
    folder: Path | None = typer.Option(
        None,
        "--dir",
        file_okay=False,
        help="Use folders under PATH as FlexVols instead of XFS loopback filesystems "
        "(the default as root).",
    ),
    json_: bool = output.JsonOption,
) -> None:
    """Measure download, copy offload, direct clone and cache clone side by side; with
    --boot, servers booted from those volumes."""
    console = output.console if output.console.is_terminal else Console(width=_PIPED_WIDTH)
    if boot:
        # The volume benchmark's options say nothing to --boot: refuse rather than ignore.
        given = _given(ctx, "image", "sizes", "volumes", "slow_volumes", "api")
        if given:
            raise typer.BadParameter(f"{', '.join(given)} measure volumes, not --boot")
        _boot(
            BootOptions(
                servers=servers, rounds=rounds, accel=accel, guest_image=guest_image, folder=folder
            ),
            console=console,
            json_=json_,
        )
        return
    if image is ImageKind.GUEST and _given(ctx, "sizes"):
        raise typer.BadParameter("--image guest has its own size: leave out --sizes")
    options = BenchOptions(
        sizes_gib=_parse_sizes(sizes),
        volumes=volumes,
        slow_volumes=slow_volumes,
        folder=folder,
        image=image,
        api=api,
    )
    result = run_benchmark(options, progress=_report)
    if json_:
        output.emit_json(result.to_json())
        return
    _print_timings(console, result)
    _print_space(console, result)
    _print_layouts(console, result)
    output.print_targets(console, result.targets())


def _given(ctx: typer.Context, *names: str) -> list[str]:
    """The options among ``names`` given on the command line (by name: newer Typers vendor
    their own Click, with its own ParameterSource)."""
    return [
        f"--{name.replace('_', '-')}"
        for name in names
        if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
    ]


def _report(message: str) -> None:
    output.errors.print(f"[dim]{message}[/dim]")


def _boot(options: BootOptions, *, console: Console, json_: bool) -> None:
    result = run_boot_benchmark(options, progress=_report)
    if json_:
        output.emit_json(result.to_json())
    else:
        print_boot_result(console, result)
    if not result.passed:
        raise BenchmarkFailed("; ".join(result.problems))


def _parse_sizes(text: str) -> list[float]:
    try:
        sizes = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of GiB values") from None
    if not sizes or any(size <= 0 for size in sizes):
        raise typer.BadParameter("image sizes must be positive numbers of GiB")
    return sorted(set(sizes))


def _print_timings(console: Console, result: BenchResult) -> None:
    rows = []
    for size in result.sizes:
        rows += _size_rows(size)
    output.table(
        f"bootvol bench: seconds to a usable volume ({result.image} image; {result.cluster})",
        ["image", "path", "volumes", "median s", "p95 s", "vs download", "host bytes", "how"],
        rows,
        to=console,
    )
    console.print(
        f"download and copy-offload move the whole image: {result.slow_volumes} volumes each "
        f"(one more download and reference round first, unmeasured); clone paths: "
        f"{result.volumes} volumes each. host bytes: image bytes through bootvol or its "
        "qemu-img, the most for one volume."
    )


def _size_rows(size: SizeResult) -> list[tuple[str, ...]]:
    rows = []
    for path, title in _ROWS:
        measured = size.paths[path]
        rows.append(
            (
                f"{size.key} GiB",
                title,
                str(len(measured.samples)),
                _seconds(measured.median_s),
                _seconds(measured.p95_s),
                _speedup(size.speedup(measured.median_s)),
                output.human_bytes(measured.host_bytes),
                measured.how,
            )
        )
        if path is BenchPath.DOWNLOAD:
            rows += _reference_rows(size)
    return rows


def _reference_rows(size: SizeResult) -> list[tuple[str, ...]]:
    reference = size.reference
    checked = reference.same_guarantees
    return [
        (
            f"{size.key} GiB",
            "  by hand: curl -o + qemu-img convert",
            str(len(reference.totals)),
            _seconds(reference.median_s),
            _seconds(reference.p95_s),
            _speedup(size.speedup(reference.median_s)),
            "-",
            "not bootvol; unchecked, not durable",
        ),
        (
            f"{size.key} GiB",
            "  by hand, checked and durable",
            str(len(checked)),
            _seconds(median(checked)),
            _seconds(p95(checked)),
            _speedup(size.speedup(median(checked))),
            "-",
            "curl, sha512sum, qemu-img -t none",
        ),
    ]


def _print_space(console: Console, result: BenchResult) -> None:
    output.table(
        "space: the cache entry, and the cache-clone volumes (statvfs, cache entry included)",
        [
            "image",
            "image data",
            "cache entry",
            "entry / data",
            "extents",
            "volumes",
            "physical used",
            "ratio",
            "N x image size",
        ],
        [
            (
                f"{size.key} GiB",
                output.human_bytes(size.space.image_data_bytes),
                output.human_bytes(size.space.image_physical_bytes),
                f"{size.space.entry_vs_data:.2f}x",
                str(size.space.entry_extents),
                str(size.space.volumes),
                output.human_bytes(size.space.physical_bytes_used),
                f"{size.space.ratio:.3f}x",
                output.human_bytes(size.space.naive_bytes),
            )
            for size in result.sizes
        ],
        to=console,
    )
    console.print(
        "image data: the image's non-zero blocks; extents: the cache entry's (FIEMAP): a "
        "reflink clone costs time per extent, not per byte."
    )


def _print_layouts(console: Console, result: BenchResult) -> None:
    rows = [
        (
            f"{size.key} GiB",
            trial.label + (" (default)" if trial.min_hole_bytes == DEFAULT_MIN_HOLE else ""),
            str(trial.extents),
            f"{trial.clone_ms:.3f}",
            output.human_bytes(trial.entry_bytes),
            f"{trial.entry_bytes / max(1, size.space.image_data_bytes):.2f}x",
            _seconds(trial.convert_s),
        )
        for size in result.sizes
        for trial in size.layouts
    ]
    if not rows:
        return
    output.table(
        "cache entry layouts: \\[cache] min_hole, the qcow2 image converted with each",
        ["image", "min_hole", "extents", "clone ms", "space", "vs data", "convert s"],
        rows,
        to=console,
    )


def _seconds(value: float) -> str:
    return f"{value:.4f}" if value < 10 else f"{value:.2f}"


def _speedup(value: float) -> str:
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2f}x"
