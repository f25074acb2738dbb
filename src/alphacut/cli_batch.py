"""The ``batch`` and ``watch`` commands, registered on the group of :mod:`alphacut.cli`."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from .cli import _engine_options, build_options, cli, make_session
from .errors import AlphacutError

__all__ = ["batch", "watch"]


class _RateColumn:
    """Images per second, for rich's progress bar (built lazily: rich is only needed on a TTY)."""

    @staticmethod
    def make() -> Any:
        from rich.progress import ProgressColumn
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text("-- img/s" if speed is None else f"{speed:.2f} img/s", style="progress.data.speed")

        return Rate()


def _progress() -> Any:
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    _RateColumn.make(), TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))


def _summary(report: Any) -> None:
    d = report.as_dict()
    c = d["counts"]
    run = c["this_run"]
    click.echo(
        f"{c['inputs']} inputs: {c['ok']} ok, {c['failed']} failed, {c['needs_review']} to check by eye"
        f" (this run: {run['done']} done, {run['skipped']} already done, {run['failed']} failed"
        + (f", {d['images_per_second']:.2f} img/s" if d["images_per_second"] else "") + ")",
        err=True,
    )
    for f in d["failures"]:
        click.echo(f"alphacut: failed: {f['input']}: {f['error']}", err=True)
    click.echo(f"report: {Path(report.output_dir) / 'alphacut-report.json'} (and .csv)", err=True)


@cli.command()
@click.argument("input_dir", metavar="IN")
@click.argument("output_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@_engine_options
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="images per model call (default: 8 on a GPU, 1 on a CPU)")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: run on a Ray cluster (pip install 'alphacut[ray]'); IN may be s3://...")
@click.option("--address", default=None, help="Ray cluster address (default: start a local one)")
def batch(input_dir: str, output_dir: Path, fmt: str | None, mask: bool, background: str | None, refine: bool,
          foreground: bool, max_megapixels: float, color: str, model: str, device: str, threads: int | None,
          batch_size: int | None, engine: str, address: str | None) -> None:
    """Cut out every image under IN into OUT, mirroring the folders.

    A ledger in OUT remembers every input: run again to skip what is done and retry
    what failed (also after a crash). OUT gets alphacut-report.json and .csv with
    failures and cutouts to check by eye. Inputs are never modified.
    """
    from .batch import run_batch

    options = build_options(fmt, mask, background, refine, foreground, max_megapixels, color)
    if engine == "ray":
        from .ray_engine import run_ray

        try:
            report = run_ray(input_dir, output_dir, options=options, model=model, device=device,
                             threads=threads, batch_size=batch_size, address=address)
        except AlphacutError as exc:
            raise click.ClickException(str(exc)) from None
        _summary(report)
        sys.exit(1 if report.failures else 0)
    if not Path(input_dir).is_dir():
        raise click.BadParameter(f"{input_dir} is not a folder", param_hint="IN")
    session, model_workers = make_session(model, device, threads, parallel=True, batch_size=batch_size)
    progress = _progress()
    task: list[Any] = []

    def on_plan(todo: int, skipped: int) -> None:
        if progress is not None:
            progress.start()
            task.append(progress.add_task("cutting out", total=todo))
        elif skipped:
            click.echo(f"{skipped} already done, {todo} to do", err=True)

    def on_result(result: Any) -> None:
        if progress is not None and task:
            progress.advance(task[0])

    try:
        report = run_batch(Path(input_dir), output_dir, options=options, session=session, batch_size=batch_size,
                           model_workers=model_workers, on_plan=on_plan, on_result=on_result)
    except AlphacutError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("alphacut: interrupted: run the same command again to carry on", err=True)
        sys.exit(130)
    finally:
        if progress is not None:
            progress.stop()
    _summary(report)
    sys.exit(1 if report.failures else 0)


@cli.command()
@click.argument("input_dir", metavar="IN", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("output_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=Path))
@_engine_options
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="seconds between polls of IN")
@click.option("--settle", type=click.IntRange(min=1), default=2, show_default=True,
              help="polls a file's size and mtime must stay unchanged before it is taken")
@click.option("--once", is_flag=True, help="handle the files completely there now, then exit")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="stop after this many seconds")
def watch(input_dir: Path, output_dir: Path, fmt: str | None, mask: bool, background: str | None, refine: bool,
          foreground: bool, max_megapixels: float, color: str, model: str, device: str, threads: int | None,
          interval: float, settle: int, once: bool, timeout: float | None) -> None:
    """Cut out images as they arrive in IN, into OUT (same ledger as batch); Ctrl-C stops."""
    from .watch import watch as run_watch

    options = build_options(fmt, mask, background, refine, foreground, max_megapixels, color)
    session, _ = make_session(model, device, threads)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        click.echo("alphacut: stopping after the current image (Ctrl-C again to stop now)", err=True)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_result(result: Any) -> None:
        if result.status == "failed":
            click.echo(f"alphacut: failed: {result.rel}: {result.error}", err=True)
        elif result.status == "done":
            review = " (check by eye)" if result.needs_review else ""
            click.echo(f"{result.rel} -> {result.output}{review}", err=True)

    click.echo(f"watching {input_dir} (Ctrl-C to stop)", err=True)
    try:
        report = run_watch(input_dir, output_dir, options=options, session=session, interval=interval,
                           settle=settle, stop=stop, once=once, timeout=timeout, on_result=on_result)
    except AlphacutError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    _summary(report)
