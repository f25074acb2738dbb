"""One frozen :class:`Options`: the single source of option names and defaults.

The CLI, the HTTP API and the library all build this object; nothing else holds
defaults. Any change to a default that alters exported pixels or bytes is a
CHANGELOG entry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import OptionsError

__all__ = ["DEFAULT_MODEL", "ColorMode", "Options", "OutputFormat", "parse_color"]

OutputFormat = Literal["png", "webp", "jpeg"]
ColorMode = Literal["keep", "srgb"]
DEFAULT_MODEL = "medium"
_FORMATS = ("png", "webp", "jpeg")


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Options:
    """How one image is cut out and encoded."""

    format: OutputFormat = _opt("png", "output format: png (default), webp (lossless) or jpeg (flattened)")
    mask: bool = _opt(False, "write the alpha matte alone (grayscale) instead of the cutout")
    background: str | None = _opt(
        None, "flatten over this colour (#rrggbb or a name); jpeg defaults to white"
    )
    refine: bool = _opt(True, "refine the edges against the full-resolution photo")
    foreground: bool = _opt(True, "estimate foreground colours at the edges (no halos)")
    max_megapixels: float = _opt(250.0, "refuse images with more pixels than this (decompression bombs)")
    color: ColorMode = _opt(
        "keep", "keep: output keeps the input's ICC profile; srgb: convert pixels to sRGB"
    )

    def __post_init__(self) -> None:
        if self.format not in _FORMATS:
            raise OptionsError(
                f"unknown output format {self.format!r}: use one of {', '.join(_FORMATS)}"
            )
        if not self.max_megapixels > 0:
            raise OptionsError(f"max_megapixels must be positive, got {self.max_megapixels!r}")
        if self.color not in ("keep", "srgb"):
            raise OptionsError(f"color must be 'keep' or 'srgb', got {self.color!r}")
        if self.background is not None:
            parse_color(self.background)

    @property
    def flatten_color(self) -> tuple[int, int, int] | None:
        """The colour to flatten over, or None to keep transparency."""
        if self.background is not None:
            return parse_color(self.background)
        return (255, 255, 255) if self.format == "jpeg" else None

    def replace(self, **changes: Any) -> Options:
        return dataclasses.replace(self, **changes)

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(cls)


def parse_color(text: str) -> tuple[int, int, int]:
    """Parse ``#rgb``, ``#rrggbb`` or a CSS colour name into an RGB triple."""
    from PIL import ImageColor

    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise OptionsError(
            f"cannot read colour {text!r}: use #rrggbb (for example #ffffff) or a name like white"
        ) from None
    return (rgb[0], rgb[1], rgb[2])
