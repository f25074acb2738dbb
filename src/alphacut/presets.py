"""Listing presets: named sets of :class:`~alphacut.options.Options` values for common uses.

A preset is data (its values and the rule they follow), applied with
``Options.from_preset(name, **overrides)``; explicit options override its values
on every surface (``--preset`` on the command line, ``?preset=`` in the HTTP
API, the page's menu). docs/listing.md lists them with their rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import OptionsError

__all__ = ["PRESETS", "Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """``values``: Options field values; ``label``: the name people see; ``rule``: why these values."""

    name: str
    label: str
    rule: str
    values: Mapping[str, Any] = field(default_factory=dict)


_SQUARE_WHITE = {"crop": True, "canvas": "2000x2000", "fill": 85.0, "background": "#ffffff", "align": "center"}

PRESETS: Mapping[str, Preset] = MappingProxyType({
    preset.name: preset
    for preset in (
        Preset(
            "square-white",
            "Square, white, 85 %",
            "Marketplace main image: a square on pure white (255, 255, 255), the product's longer side"
            " 85 % of the frame, 2000 px (large enough for zoom).",
            _SQUARE_WHITE,
        ),
        Preset(
            "square-white-shadow",
            "Square, white, 85 %, contact shadow",
            "As square-white, with the product standing on the frame's floor (bottom-aligned) over a soft"
            " contact shadow: for secondary images where a shadow is allowed.",
            {**_SQUARE_WHITE, "align": "bottom", "shadow": "contact"},
        ),
        Preset(
            "portrait-4x5",
            "Portrait 4:5, white, 85 %",
            "Social feeds' tallest portrait frame (4:5), 1600 x 2000 px, on white, the product 85 % of it.",
            {"crop": True, "canvas": "1600x2000", "fill": 85.0, "background": "#ffffff"},
        ),
        Preset(
            "transparent-crop",
            "Transparent, cropped",
            "The cutout cropped to the subject with a 2 % margin, transparent: for layouts made elsewhere.",
            {"crop": True, "margin": "2%", "background": None},
        ),
        Preset(
            "story-9x16-blur",
            "Story 9:16, blurred photo",
            "Full-screen stories (9:16, 1080 x 1920 px): the subject 70 % of the frame over its own photo,"
            " blurred (placed like the subject, so it stands in its own surroundings).",
            {"crop": True, "canvas": "1080x1920", "fill": 70.0, "background": "blur"},
        ),
    )
})


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise OptionsError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}") from None
