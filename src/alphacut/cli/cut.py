"""``alphacut cut``: files, folders, globs or standard input, each to its own output."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import click

from ..errors import AlphacutError, input_failure
from ..fsutil import clean_partials
from ..imageio import DecodedImage, read_file
from ..jobs import (
    EXTENSIONS,
    cut_and_write,
    is_image,
    load_input,
    looks_like_output,
    output_file_name,
    scan,
    write_output,
)
from ..options import Options
from ..pipeline import Cutout, cut_from_mask
from ..session import ModelSession, Refines
from ..startmask import read_start_mask
from . import common
from .common import Engine, engine_options

__all__ = ["cut"]

Record = dict[str, Any]  # one input's JSON record; "status" is a CutStatus
CutStatus = Literal["ok", "error", "skipped"]
_OUTPUT_SUFFIXES = {".png": "png", ".webp": "webp", ".jpg": "jpeg", ".jpeg": "jpeg"}


@dataclass
class _Item:
    source: Path | None  # None = standard input
    display: str
    output: Path | None = None  # None = standard output
    root: Path | None = None  # the folder argument this file was found under
    note: str | None = None  # said with the record (how the output was named)
    refused: str | None = None  # why this input is not cut out (its record is an error)


def _record(status: CutStatus, path: str, output: str | None, **fields: Any) -> Record:
    return {"path": path, "output": output, "status": status, "error": None, **fields}


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", default=None,
              help="output file (one input), folder (several), or - for standard output")
@engine_options
@click.option("--overwrite", is_flag=True, help="replace outputs that already exist")
@click.option("--json", "as_json", is_flag=True, help="print one JSON record per input on standard output")
@click.option("--start-mask", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="a corrected mask of the one input (any size, its aspect ratio; black = background, white ="
                   " subject; a cutout's alpha works too) to refine instead of the model's")
def cut(inputs: tuple[str, ...], output: str | None, engine: Engine, overwrite: bool, as_json: bool,
        start_mask: Path | None) -> None:
    """Cut the background out of INPUTS: files, folders, globs, or - for standard input.

    Outputs are named NAME-cutout.png (NAME-mask.png with --mask) beside each input,
    or in -o's folder; when two inputs share a NAME (a.jpg and a.png), both outputs
    keep the input's extension: a-jpg-cutout.png, a-png-cutout.png. An input is never
    overwritten; an existing output is skipped (--overwrite replaces it). Files named
    like outputs, and anything in -o's folder, are never taken as inputs.

    With --start-mask FILE (one input only) the model is not run: the edges and colours
    are refined from FILE, a mask fixed by hand (the page's Download mask, or any editor).
    """
    named_format = _OUTPUT_SUFFIXES.get(Path(output).suffix.lower()) if output not in (None, "-") else None
    options = engine.options(default_format=named_format or "png")
    out_dir = Path(output).resolve() if output not in (None, "-") and Path(output).is_dir() else None
    items, missing, own = _collect(inputs, out_dir)
    if start_mask is not None:
        _check_start_mask(start_mask, len(items) + len(missing) + len(own))
    _plan_outputs(items, output, options)
    if as_json and any(i.output is None for i in items):
        raise click.UsageError("--json prints records on standard output: write the image to a file with -o")
    records = [_record("error", m, None, error="no such file, folder or matching files") for m in missing]
    records += [_record("skipped", str(p), None,
                        reason=f"{p.name} is named like an alphacut output: not cut again (rename it to cut it)")
                for p in own]
    for r in records:
        _report(r, as_json)
    writing = threading.Lock()  # held while an output is written: a second Ctrl-C waits for it
    try:
        with _two_stage_interrupt(writing):
            if items:
                _clean_stale_partials(items)
                session: ModelSession | None = None
                refiner: Refines | None = None
                if start_mask is not None:  # the model is not needed, nor loaded (nor fetched)
                    refiner, workers = common.make_refiner(engine), 1
                else:
                    session, workers = common.make_session(engine, parallel=len(items) > 1)
                for record in _run(items, options, session, workers, overwrite, as_json, writing,
                                   start_mask, refiner):
                    records.append(record)
    except KeyboardInterrupt:
        click.echo(_INTERRUPTED, err=True)
        sys.exit(130)
    failed = sum(r["status"] == "error" for r in records)
    skipped = sum(r["status"] == "skipped" for r in records)
    if not as_json and (len(records) > 1 or skipped):
        check = sum(_needs_review(r) for r in records)
        to_check = f" ({check} to check by eye)" if check else ""
        click.echo(f"{len(records) - failed - skipped} done{to_check}, {skipped} skipped, {failed} failed", err=True)
    sys.exit(1 if failed else 0)


def _check_start_mask(start_mask: Path, inputs: int) -> None:
    if inputs != 1:
        raise click.UsageError(f"--start-mask is the mask of one photo: give exactly one input (got {inputs})")
    if not start_mask.is_file():
        raise click.UsageError(f"--start-mask {start_mask}: no such file")


def _collect(inputs: tuple[str, ...], out_dir: Path | None) -> tuple[list[_Item], list[str], list[Path]]:
    """The inputs to cut out, the arguments that match nothing, and the files named on the command
    line that look like outputs. Folders and globs leave out outputs and ``out_dir`` quietly."""
    items: list[_Item] = []
    missing: list[str] = []
    own: list[Path] = []

    def wanted(p: Path) -> bool:
        return (p.is_file() and is_image(p) and not looks_like_output(p.name)
                and (out_dir is None or not p.resolve().is_relative_to(out_dir)))

    for arg in inputs:
        if arg == "-":
            items.append(_Item(source=None, display="<stdin>"))
            continue
        path = Path(arg)
        if path.is_dir():
            found, _ = scan(path)
            items.extend(_Item(source=p, display=str(p), root=path) for p in found if wanted(p))
        elif path.exists():
            if looks_like_output(path.name):
                own.append(path)
            else:
                items.append(_Item(source=path, display=arg))
        elif glob.has_magic(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True) if Path(m).is_file())
            if not matches:
                missing.append(arg)
            items.extend(_Item(source=m, display=str(m)) for m in matches if wanted(m))
        else:
            missing.append(arg)
    seen: set[Path] = set()  # a file named twice (itself and its folder, two globs) is cut once
    unique = []
    for item in items:
        key = item.source.resolve() if item.source is not None else None
        if key is None or key not in seen:
            unique.append(item)
            if key is not None:
                seen.add(key)
    return unique, missing, own


_INTERRUPTED = ("alphacut: interrupted: the outputs written are whole; run the same command again to do the rest"
                " (what exists is skipped)")


@contextlib.contextmanager
def _two_stage_interrupt(writing: threading.Lock) -> Iterator[None]:
    """Ctrl-C once: stop after the images in flight (KeyboardInterrupt); twice: stop at once, but
    never in the middle of writing an output (``writing`` is held then), so no file is partial."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if pressed:
            with writing:
                click.echo(_INTERRUPTED, err=True)
                sys.stderr.flush()
                os._exit(130)  # the model threads cannot be interrupted; outputs are all whole
        pressed.append(signum)
        click.echo("alphacut: stopping after the images in flight (Ctrl-C again to stop at once)", err=True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _clean_stale_partials(items: list[_Item]) -> None:
    """Remove the temporary files a killed ``cut`` left where this one writes (not a live writer's)."""
    for folder in {i.output.parent for i in items if i.output is not None}:
        clean_partials(folder, recursive=False, target=looks_like_output)


def _plan_outputs(items: list[_Item], output: str | None, options: Options) -> None:
    if output == "-":
        if len(items) != 1:
            raise click.UsageError("-o - (standard output) takes exactly one input")
        items[0].output = None
        return
    to_dir = output is not None and bool(
        len(items) > 1 or Path(output).is_dir() or output.endswith(("/", os.sep)) or (items and items[0].root)
    )
    inputs = {i.source.resolve() for i in items if i.source is not None}
    ext = EXTENSIONS[options.format]
    kind = "mask" if options.mask else "cutout"
    for item in items:
        if item.source is None:
            item.output = Path(output) if output and not to_dir else None
        elif output is not None and not to_dir:
            item.output = Path(output)
        else:
            base = Path(output) if output is not None else item.source.parent
            if output is not None and item.root is not None:
                base = base / item.source.parent.relative_to(item.root)
            item.output = base / output_file_name(item.source, ext, kind=kind)
    # One rule for shared names: every input whose NAME-cutout another input of the run
    # also wants keeps its extension in the name (a-jpg-cutout.png, a-png-cutout.png):
    # the same names whatever the order of the arguments, and none of them replaces another.
    by_output: dict[Path, list[_Item]] = {}
    for item in items:
        if item.output is not None:
            by_output.setdefault(item.output.resolve(), []).append(item)
    for sharing in by_output.values():
        if len(sharing) < 2 or any(i.source is None for i in sharing) or (output is not None and not to_dir):
            continue
        for item in sharing:
            assert item.source is not None and item.output is not None
            plain = output_file_name(item.source, ext, kind=kind)
            item.output = item.output.with_name(output_file_name(item.source, ext, kind=kind, keep_suffix=True))
            item.note = f"output named {item.output.name}: another input also makes {plain}"
    taken: dict[Path, _Item] = {}
    for item in items:
        if item.output is None:
            continue
        resolved = item.output.resolve()
        if resolved in inputs:
            raise click.UsageError(f"output {item.output} is also an input: inputs are never overwritten")
        if resolved in taken:  # a.jpg and a.JPG: even with the extension the names meet
            item.refused = (f"its output {item.output} is also {taken[resolved].display}'s: cut it on its own"
                            " with -o")
        else:
            taken[resolved] = item


def _run(items: list[_Item], options: Options, session: ModelSession | None, workers: int, overwrite: bool,
         as_json: bool, writing: threading.Lock, start_mask: Path | None = None,
         refiner: Refines | None = None) -> Iterator[Record]:
    """Cut out ``items`` with ``session``'s model, or from ``start_mask`` with ``refiner`` alone."""
    def read(item: _Item) -> DecodedImage:
        if item.source is None:
            return load_input(sys.stdin.buffer.read, options)
        source = item.source
        return load_input(lambda: read_file(source, max_megapixels=options.max_megapixels), options)

    def save(item: _Item, cutout: Cutout, seconds: float) -> Record:
        started = time.perf_counter()
        record = _record("ok", item.display, str(item.output) if item.output else "-", size=list(cutout.size),
                         warnings=cutout.warnings + ([item.note] if item.note else []),
                         confidence=dataclasses.asdict(cutout.confidence))
        try:
            with writing:
                if item.output is None:
                    sys.stdout.buffer.write(cutout.encode(options))
                    sys.stdout.buffer.flush()
                else:
                    write_output(item.output, cutout, options, overwrite=overwrite)
        except Exception as exc:  # noqa: BLE001 - the per-input boundary: this input's record, the others go on
            record.update(status="error", error=str(input_failure(exc, doing="writing")))
        # Encoding a listing photo may have added one (a subject kept well under the fill).
        record["warnings"] = cutout.warnings + ([item.note] if item.note else [])
        record["seconds"] = round(seconds + time.perf_counter() - started, 3)
        return record

    def failed(item: _Item, exc: AlphacutError, seconds: float) -> Record:
        return _record("error", item.display, None, error=str(exc), seconds=round(seconds, 3))

    # Items whose output exists are skipped, and refused items failed, before any work is spent on them.
    todo: list[_Item] = []
    for item in items:
        if item.refused is not None:
            yield _report(_record("error", item.display, str(item.output), error=item.refused), as_json)
        elif item.output is not None and item.output.is_dir():
            yield _report(_record("error", item.display, str(item.output),
                                  error=f"a folder is in the way at {item.output}: move it, or choose another"
                                        " output folder with -o"), as_json)
        elif item.output is not None and item.output.exists() and not overwrite:
            yield _report(_record("skipped", item.display, str(item.output),
                                  reason=f"{item.output} exists (pass --overwrite to replace it)"), as_json)
        else:
            todo.append(item)

    if start_mask is not None:
        if refiner is None:
            raise TypeError("a start mask is refined by a refiner: pass one")
        for item in todo:  # one at most (checked before)
            yield _report(_cut_from_mask(item, start_mask, read, save, failed, options, refiner), as_json)
        return
    if session is None:
        raise TypeError("cutting out runs the model: pass a session")

    progress = _progress(len(todo), as_json)
    with progress if progress is not None else contextlib.nullcontext():
        task = progress.add_task("cutting out", total=len(todo)) if progress is not None else None
        for record in cut_and_write(todo, read=read, save=save, failed=failed, options=options, session=session,
                                    model_workers=workers, post_workers=1):
            yield _report(record, as_json)
            if progress is not None and task is not None:
                progress.advance(task)


def _cut_from_mask(item: _Item, start_mask: Path, read: Callable[[_Item], DecodedImage],
                   save: Callable[[_Item, Cutout, float], Record],
                   failed: Callable[[_Item, AlphacutError, float], Record], options: Options,
                   session: Refines) -> Record:
    """One input refined from ``start_mask`` instead of the model's mask."""
    started = time.perf_counter()
    try:
        decoded = read(item)
        mask = read_start_mask(start_mask, max_megapixels=options.max_megapixels)
        cutout = cut_from_mask(decoded, mask, options=options, session=session)
    except Exception as exc:  # noqa: BLE001 - the per-input boundary, as in cut_and_write
        return failed(item, input_failure(exc), time.perf_counter() - started)
    return save(item, cutout, time.perf_counter() - started)


def _progress(total: int, as_json: bool) -> Any:
    if as_json or total < 2 or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))


def _report(record: Record, as_json: bool) -> Record:
    if as_json:
        click.echo(json.dumps(record, sort_keys=True))
    else:
        for w in record.get("warnings") or []:
            click.echo(f"alphacut: warning: {record['path']}: {w}", err=True)
        if record["status"] == "error":
            click.echo(f"alphacut: error: {record['path']}: {record['error']}", err=True)
        elif record["status"] == "skipped":
            click.echo(f"alphacut: skipped: {record['path']}: {record['reason']}", err=True)
        elif _needs_review(record):
            click.echo(f"alphacut: check: {record['path']}: {_review_advice(record['confidence'])}", err=True)
    return record


def _needs_review(record: Record) -> bool:
    return record["status"] == "ok" and bool((record.get("confidence") or {}).get("needs_review"))


def _review_advice(confidence: dict[str, Any]) -> str:
    """What to look at in a cutout the edge confidence flags (as the page says it)."""
    if confidence.get("empty"):
        return "no subject was found; look at the cutout"
    if confidence.get("fills_frame"):
        return "the subject fills the whole photo; check that the background was removed"
    return "the model was unsure of part of the outline; look at its edges at 200 %"

