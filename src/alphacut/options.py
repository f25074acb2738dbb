"""One frozen :class:`Options`: the single source of option names and defaults.

The CLI, the HTTP API and the library all build this object; nothing else holds
defaults. Any change to a default that alters exported pixels or bytes is a
CHANGELOG entry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .errors import OptionsError
from .listing import hundredths, parse_canvas, parse_margin, parse_offset

__all__ = [
    "DEFAULT_MODEL",
    "EDGES",
    "LISTING_FIELDS",
    "Align",
    "BackgroundKind",
    "ColorMode",
    "Edges",
    "Options",
    "OutputFormat",
    "ShadowKind",
    "parse_color",
]

OutputFormat = Literal["png", "webp", "jpeg"]
ColorMode = Literal["keep", "srgb"]
Align = Literal["center", "bottom"]
ShadowKind = Literal["none", "drop", "contact"]
BackgroundKind = Literal["transparent", "color", "blur", "image"]
Edges = Literal["auto", "crisp", "soft"]
DEFAULT_MODEL = "medium"
_FORMATS = ("png", "webp", "jpeg")
EDGES: tuple[str, ...] = get_args(Edges)
# Fields added with listing photos: a ledger's fingerprint counts them only when they are not at
# their defaults, so folders cut out before they existed are not redone.
LISTING_FIELDS = (
    "crop",
    "margin",
    "canvas",
    "fill",
    "align",
    "upscale",
    "background_image",
    "shadow",
    "shadow_opacity",
    "shadow_blur",
    "shadow_offset",
    "quality",
)
# Fields a ledger's fingerprint counts only when they are not at their defaults.
_LATER_FIELDS = (*LISTING_FIELDS, "edges")


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Options:
    """How one image is cut out and encoded."""

    format: OutputFormat = _opt("png", "output format: png (default), webp (lossless) or jpeg (flattened)")
    mask: bool = _opt(False, "write the alpha matte alone (grayscale) instead of the cutout")
    background: str | None = _opt(
        None,
        "background: a colour (#rrggbb or a name), blur (the photo, blurred) or transparent;"
        " jpeg defaults to white",
    )
    refine: bool = _opt(True, "refine the edges against the full-resolution photo")
    foreground: bool = _opt(True, "estimate foreground colours at the edges (no halos)")
    edges: Edges = _opt(
        "auto",
        "edge style: auto (crisp outlines stay crisp, soft ones are matted to the photo), crisp (hard"
        " objects, products) or soft (hair, fur, plants: the matte may reach past the model's edge, and"
        " wide areas the model half takes for the subject are kept more opaque)",
    )
    max_megapixels: float = _opt(250.0, "refuse images with more pixels than this (decompression bombs)")
    color: ColorMode = _opt(
        "keep", "keep: output keeps the input's ICC profile; srgb: convert pixels to sRGB"
    )
    crop: bool = _opt(False, "crop to the subject (faint specks ignored)")
    margin: str = _opt("0", "margin around the cropped subject: percent of its longer side (5%) or pixels (40px)")
    canvas: str | None = _opt(
        None, "canvas: a size (2000x2000), an aspect (1:1, 4:5, 16:9) or photo (the photo's aspect)"
    )
    fill: float | None = _opt(None, "percent of the canvas's width and height the subject may take, e.g. 85 (default 100)")
    align: Align = _opt("center", "where the subject sits on the canvas: center, or bottom (standing products)")
    upscale: bool = _opt(False, "allow scaling the subject above its own pixels to reach the fill")
    background_image: str | None = _opt(None, "an image file behind the subject (cover-fitted to the canvas)")
    shadow: ShadowKind = _opt("none", "a soft shadow from the alpha: none, drop, or contact (under standing products)")
    shadow_opacity: float = _opt(0.35, "shadow opacity, 0..1")
    shadow_blur: float = _opt(2.0, "shadow blur radius, percent of the placed subject's longer side")
    shadow_offset: str = _opt("0,1.5", "drop shadow offset x,y, percent of the placed subject's longer side")
    quality: int | None = _opt(
        None, "JPEG quality 1..100 (default 95); with webp, lossy at this quality (default lossless)"
    )

    def __post_init__(self) -> None:
        if self.format not in _FORMATS:
            raise OptionsError(
                f"unknown output format {self.format!r}: use one of {', '.join(_FORMATS)}"
            )
        if not self.max_megapixels > 0:
            raise OptionsError(f"max_megapixels must be positive, got {self.max_megapixels!r}")
        if self.edges not in EDGES:
            raise OptionsError(f"edges must be one of {', '.join(EDGES)}; got {self.edges!r}")
        if self.color not in ("keep", "srgb"):
            raise OptionsError(f"color must be 'keep' or 'srgb', got {self.color!r}")
        if self.background not in (None, "transparent", "blur"):
            parse_color(self.background)
        self._check_listing()

    def _check_listing(self) -> None:
        """Every listing value, with a message that names it and says what to write."""
        if self.canvas is not None:
            parse_canvas(self.canvas)
        if parse_margin(self.margin)[0] and not self.crop:
            raise OptionsError(f"margin {self.margin!r} needs a crop: add --crop (crop=True), or leave the margin out")
        if self.fill is not None:
            if not (isinstance(self.fill, int | float) and 0 < self.fill <= 100 and hundredths(self.fill) >= 1):
                raise OptionsError(f"fill must be a percent in (0, 100], for example 85; got {self.fill!r}")
        needs_canvas = {"fill": self.fill is not None, "align": self.align == "bottom", "upscale": self.upscale}
        for name, given in needs_canvas.items():
            if given and self.canvas is None:
                raise OptionsError(
                    f"{name}={getattr(self, name)!r} needs a canvas: give one too (for example --canvas 2000x2000,"
                    " canvas='1:1')"
                )
        if self.align not in ("center", "bottom"):
            raise OptionsError(f"align must be 'center' or 'bottom', got {self.align!r}")
        if self.shadow not in ("none", "drop", "contact"):
            raise OptionsError(f"shadow must be 'none', 'drop' or 'contact', got {self.shadow!r}")
        if not 0 <= self.shadow_opacity <= 1:
            raise OptionsError(f"shadow_opacity must be 0..1, for example 0.35; got {self.shadow_opacity!r}")
        if not 0 <= self.shadow_blur <= 100:
            raise OptionsError(f"shadow_blur must be a percent 0..100, for example 2; got {self.shadow_blur!r}")
        parse_offset(self.shadow_offset)
        if self.quality is not None and not (isinstance(self.quality, int) and 1 <= self.quality <= 100):
            raise OptionsError(f"quality must be a whole number 1..100, for example 90; got {self.quality!r}")
        if self.background_image is not None:
            if not self.background_image:
                raise OptionsError("background_image is empty: give the path of an image file")
            if self.background not in (None, "transparent"):
                raise OptionsError(
                    f"background {self.background!r} and background_image {self.background_image!r} both given:"
                    " keep one"
                )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Options:
        """The options of preset ``name`` (:data:`alphacut.presets.PRESETS`), ``overrides`` replacing its values.

        Overriding away the canvas (``canvas=None``) or the crop (``crop=False``) drops the
        preset's values that only apply to them (fill, align, upscale; margin).
        """
        from .presets import get_preset

        values = dict(get_preset(name).values)
        dependent = {"canvas": (None, ("fill", "align", "upscale")), "crop": (False, ("margin",))}
        for key, (off, names) in dependent.items():
            if key in overrides and overrides[key] == off:
                for dropped in names:
                    values.pop(dropped, None)
        return cls(**{**values, **overrides})

    @property
    def flatten_color(self) -> tuple[int, int, int] | None:
        """The colour to flatten over, or None to keep transparency (or for a blur or image background)."""
        if self.background not in (None, "transparent", "blur"):
            return parse_color(self.background)
        if self.background == "blur" or self.background_image is not None:
            return None
        return (255, 255, 255) if self.format == "jpeg" else None

    @property
    def background_kind(self) -> BackgroundKind:
        """What is behind the subject on a listing canvas."""
        if self.background_image is not None:
            return "image"
        if self.background == "blur":
            return "blur"
        return "color" if self.flatten_color is not None else "transparent"

    @property
    def listing(self) -> bool:
        """Whether the output is a listing canvas (any listing option given) rather than the cutout as it is."""
        return (
            self.crop
            or self.canvas is not None
            or self.shadow != "none"
            or self.background == "blur"
            or self.background_image is not None
        )

    def identity(self) -> dict[str, Any]:
        """The values that decide an output's bytes, for fingerprints: the listing fields and
        ``edges`` only when they differ from their defaults (so older fingerprints stay valid)."""
        values = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if f.name in _LATER_FIELDS and values[f.name] == f.default:
                del values[f.name]
        return values

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
