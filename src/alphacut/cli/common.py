"""What the commands share: the engine options, the one place they become an :class:`Options`,
the session for a command, and how an alphacut error becomes a CLI error."""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..errors import AlphacutError
from ..options import DEFAULT_MODEL, ColorMode, Options, OutputFormat
from ..providers import DEVICES
from ..session import ModelSession, Session

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
    """The options every command that cuts images out takes (cut, batch, watch)."""

    fmt: str | None
    mask: bool
    background: str | None
    refine: bool
    foreground: bool
    max_megapixels: float
    color: str
    model: str
    device: str
    threads: int | None

    def options(self, default_format: str = "png") -> Options:
        """The :class:`Options` these command-line options say (a bad value is a usage error)."""
        # click checked the choices; Options checks every value again and says what is wrong.
        try:
            return Options(format=typing.cast(OutputFormat, self.fmt or default_format), mask=self.mask,
                           background=self.background, refine=self.refine, foreground=self.foreground,
                           max_megapixels=self.max_megapixels, color=typing.cast(ColorMode, self.color))
        except AlphacutError as exc:
            raise click.UsageError(str(exc)) from None


_ENGINE_KEYS = ("fmt", "mask", "background", "refine", "foreground", "max_megapixels", "color", "model",
                "device", "threads")


def engine_options(f: F) -> F:
    """Add the engine options to a command; it gets them as one ``engine`` argument (:class:`Engine`)."""
    options = [
        click.option("--format", "fmt", type=click.Choice(_FORMATS), default=None,
                     help=_help("format") + "; default from -o's extension, else png"),
        click.option("--mask", is_flag=True, default=_default("mask"), help=_help("mask")),
        click.option("--background", default=_default("background"), metavar="COLOUR", help=_help("background")),
        click.option("--refine/--no-refine", default=_default("refine"), help=_help("refine")),
        click.option("--foreground/--no-foreground", default=_default("foreground"), help=_help("foreground")),
        click.option("--max-megapixels", type=float, default=_default("max_megapixels"), show_default=True,
                     help=_help("max_megapixels")),
        click.option("--color", type=click.Choice(_choices("color")), default=_default("color"),
                     show_default=True, help=_help("color")),
        click.option("--model", default=DEFAULT_MODEL, show_default=True, help="model name (see `alphacut models list`)"),
        click.option("--device", type=click.Choice(list(DEVICES)), default="auto", show_default=True,
                     help="where the model runs: auto uses a GPU when onnxruntime has one"),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads for the model (default: all cores)"),
    ]

    @functools.wraps(f)  # keeps the name, the help and the options already attached
    def command(**kwargs: Any) -> Any:
        engine = Engine(**{key: kwargs.pop(key) for key in _ENGINE_KEYS})
        return f(engine=engine, **kwargs)

    wrapped: Any = command
    for opt in reversed(options):
        wrapped = opt(wrapped)
    return typing.cast(F, wrapped)


def make_session(engine: Engine, *, parallel: bool = False, batch_size: int | None = None) -> tuple[ModelSession, int]:
    """The session for a command and how many model calls it may run at once."""
    try:
        return Session.for_work(engine.model, device=engine.device, threads=engine.threads, parallel=parallel,
                                batch_size=batch_size)
    except AlphacutError as exc:
        raise fail(exc) from None
