"""What the commands share: the engine options, the one place they become an :class:`Options`,
the session for a command, and how an alphacut error becomes a CLI error."""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import AlphacutError
from ..options import DEFAULT_MODEL, Options, OutputFormat
from ..presets import PRESETS
from ..providers import DEVICES
from ..session import ModelSession, Refiner, Refines, Session

__all__ = ["Engine", "engine_options", "fail", "make_session"]

F = TypeVar("F", bound=Callable[..., Any])
_FORMATS: tuple[str, ...] = typing.get_args(OutputFormat)


def _field(name: str) -> Any:
    return next(f for f in Options.fields() if f.name == name)


def _help(name: str) -> str:
    return str(_field(name).metadata["help"])


def _default(name: str) -> Any:
    return _field(name).default


def _choices(name: str) -> list[str]:
    """The values an option takes, from its ``Literal`` type in :class:`Options`."""
    return [str(v) for v in typing.get_args(typing.get_type_hints(Options)[name])]


def fail(exc: AlphacutError) -> click.ClickException:
    return click.ClickException(str(exc))


@dataclass(frozen=True)
class Engine:
    """The options every command that cuts images out takes (cut, batch, watch).

    ``given`` holds the :class:`Options` values named on the command line (the rest
    come from ``preset``, else from the defaults).
    """

    fmt: str | None
    given: tuple[tuple[str, Any], ...]
    preset: str | None
    model: str
    device: str
    threads: int | None

    def options(self, default_format: str = "png") -> Options:
        """The :class:`Options` these command-line options say (a bad value is a usage error)."""
        values = dict(self.given)
        values["format"] = self.fmt or default_format
        if "background_image" in values and "background" not in values:
            values["background"] = None  # an image replaces a preset's colour
        # click checked the choices; Options checks every value again and says what is wrong.
        try:
            if self.preset is not None:
                return Options.from_preset(self.preset, **values)
            return Options(**values)
        except AlphacutError as exc:
            raise click.UsageError(str(exc)) from None


_SESSION_KEYS = ("model", "device", "threads")
# Command-line parameter -> Options field, for the options that map one to one.
_OPTION_KEYS = ("mask", "refine", "foreground", "edges", "max_megapixels", "color", "crop", "margin", "fill", "align",
                "upscale", "shadow", "shadow_opacity", "shadow_blur", "shadow_offset", "quality")


def _background(value: str) -> tuple[str, str | None]:
    """``--background``: an existing file is an image behind the subject; otherwise a colour, blur or transparent."""
    if value not in ("blur", "transparent") and Path(value).is_file():
        return "background_image", value
    return "background", value


def _given(ctx: click.Context, kwargs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The Options values the user named (not click's defaults)."""
    given: list[tuple[str, Any]] = []

    def named(param: str) -> bool:
        source = ctx.get_parameter_source(param)
        return source is not None and source is not click.core.ParameterSource.DEFAULT

    for key in _OPTION_KEYS:
        if named(key):
            given.append((key, kwargs[key]))
    if named("background"):
        given.append(_background(kwargs["background"]))
    if named("canvas"):
        canvas = kwargs["canvas"]
        given.append(("canvas", None if canvas.strip().lower() == "none" else canvas))
    return tuple(given)


def engine_options(f: F) -> F:
    """Add the engine options to a command; it gets them as one ``engine`` argument (:class:`Engine`)."""
    options = [
        click.option("--format", "fmt", type=click.Choice(_FORMATS), default=None,
                     help=_help("format") + "; default from -o's extension, else png"),
        click.option("--mask", is_flag=True, default=_default("mask"), help=_help("mask")),
        click.option("--background", default=_default("background"), metavar="COLOUR|blur|transparent|FILE",
                     help=_help("background") + "; or an image file behind the subject (cover-fitted)"),
        click.option("--refine/--no-refine", default=_default("refine"), help=_help("refine")),
        click.option("--foreground/--no-foreground", default=_default("foreground"), help=_help("foreground")),
        click.option("--edges", type=click.Choice(_choices("edges")), default=_default("edges"), show_default=True,
                     help=_help("edges")),
        click.option("--max-megapixels", type=float, default=_default("max_megapixels"), show_default=True,
                     help=_help("max_megapixels")),
        click.option("--color", type=click.Choice(_choices("color")), default=_default("color"),
                     show_default=True, help=_help("color")),
        click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
                     help="a listing preset (see docs/listing.md); options given beside it override its values"),
        click.option("--crop/--no-crop", default=_default("crop"), help=_help("crop")),
        click.option("--margin", default=_default("margin"), metavar="N%|Npx", help=_help("margin")),
        click.option("--canvas", default=None, metavar="WxH|W:H|photo", help=_help("canvas") + "; none: no canvas"),
        click.option("--fill", type=click.FloatRange(min=0, max=100, min_open=True), default=None,
                     metavar="PERCENT", help=_help("fill")),
        click.option("--align", type=click.Choice(_choices("align")), default=_default("align"), help=_help("align")),
        click.option("--upscale/--no-upscale", default=_default("upscale"), help=_help("upscale")),
        click.option("--shadow", type=click.Choice(_choices("shadow")), is_flag=False, flag_value="drop",
                     default=_default("shadow"), help=_help("shadow") + "; --shadow alone: drop"),
        click.option("--shadow-opacity", type=click.FloatRange(0, 1), default=_default("shadow_opacity"),
                     help=_help("shadow_opacity")),
        click.option("--shadow-blur", type=click.FloatRange(0, 100), default=_default("shadow_blur"),
                     metavar="PERCENT", help=_help("shadow_blur")),
        click.option("--shadow-offset", default=_default("shadow_offset"), metavar="X,Y", help=_help("shadow_offset")),
        click.option("--quality", type=click.IntRange(1, 100), default=None, help=_help("quality")),
        click.option("--model", default=DEFAULT_MODEL, show_default=True, help="model name (see `alphacut models list`)"),
        click.option("--device", type=click.Choice(list(DEVICES)), default="auto", show_default=True,
                     help="where the model runs: auto uses a GPU when onnxruntime has one"),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads for the model (default: all cores)"),
    ]
    keys = ("fmt", "preset", "background", "canvas", *_OPTION_KEYS, *_SESSION_KEYS)

    @functools.wraps(f)  # keeps the name, the help and the options already attached
    def command(**kwargs: Any) -> Any:
        ctx = click.get_current_context()
        engine = Engine(fmt=kwargs["fmt"], given=_given(ctx, kwargs), preset=kwargs["preset"],
                        **{key: kwargs[key] for key in _SESSION_KEYS})
        for key in keys:
            kwargs.pop(key)
        return f(engine=engine, **kwargs)

    wrapped: Any = command
    for opt in reversed(options):
        wrapped = opt(wrapped)
    return typing.cast(F, wrapped)


def make_refiner(engine: Engine) -> Refines:
    """The post-processing graphs alone, for refining a given mask: no model is loaded or fetched."""
    return Refiner(threads=engine.threads)


def make_session(engine: Engine, *, parallel: bool = False, batch_size: int | None = None) -> tuple[ModelSession, int]:
    """The session for a command and how many model calls it may run at once."""
    try:
        return Session.for_work(engine.model, device=engine.device, threads=engine.threads, parallel=parallel,
                                batch_size=batch_size)
    except AlphacutError as exc:
        raise fail(exc) from None
