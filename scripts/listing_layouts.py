"""Write tests/data/listing_layouts.json: layout test vectors shared by the engine and the page.

Each case is an alpha made of rectangles on a W x H photo (painted in order,
half-open ``[x0, y0, x1, y1)``, value 0..255) and the listing options; the
expected integers come from :func:`alphacut.listing.layout`. The Python tests
check the engine still gives them; the page's port (``static/listing.js``) must
give the same. Run after a deliberate change of a layout rule:

    .venv/bin/python scripts/listing_layouts.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alphacut.listing import layout  # noqa: E402

OUT = ROOT / "tests" / "data" / "listing_layouts.json"

Rect = tuple[int, int, int, int, int]


def case(name: str, size: tuple[int, int], rects: list[Rect], **options: Any) -> dict[str, Any]:
    return {"name": name, "width": size[0], "height": size[1], "rects": [list(r) for r in rects], "options": options}


SQUARE_WHITE = {"crop": True, "canvas": "2000x2000", "fill": 85}
CASES = [
    case("identity: no option", (64, 48), [(10, 5, 30, 40, 255)]),
    case("crop, no margin", (64, 48), [(10, 5, 30, 40, 255)], crop=True),
    case("crop, margin 5 % rounds half up (30 px side: 1.5 -> 2)", (64, 48), [(10, 5, 40, 25, 255)], crop=True,
         margin="5%"),
    case("crop, margin 40px reaches past the photo", (64, 48), [(10, 5, 30, 40, 255)], crop=True, margin="40px"),
    case("crop, margin as a bare number", (64, 48), [(10, 5, 30, 40, 255)], crop=True, margin="7"),
    case("crop, margin 2.5 %", (300, 200), [(17, 23, 251, 180, 255)], crop=True, margin="2.5%"),
    case("alpha 25 is not subject, 26 is", (40, 30), [(2, 2, 6, 6, 25), (10, 8, 20, 12, 26)], crop=True),
    case("no subject: the whole photo, with a warning", (50, 40), [(0, 0, 50, 40, 20)], crop=True,
         canvas="100x100", fill=85),
    case("square white, small subject: not upscaled", (640, 480), [(170, 140, 470, 340, 255)], **SQUARE_WHITE),
    case("square white, upscaled", (640, 480), [(170, 140, 470, 340, 255)], **SQUARE_WHITE, upscale=True),
    case("large subject downscaled, th rounds half up (637.5)", (3000, 2000), [(300, 100, 2700, 1900, 255)],
         crop=True, canvas="1000x1000", fill=85),
    case("aspect 1:1 fill 85 (ceil)", (640, 480), [(170, 140, 470, 340, 255)], crop=True, canvas="1:1", fill=85),
    case("aspect 4:5", (640, 480), [(170, 140, 470, 340, 255)], crop=True, canvas="4:5", fill=85),
    case("aspect 16:9, tall subject", (640, 480), [(300, 20, 360, 460, 255)], crop=True, canvas="16:9", fill=90),
    case("aspect 3:2 no fill (100 %)", (640, 480), [(100, 50, 301, 377, 255)], crop=True, canvas="3:2"),
    case("aspect of the photo", (640, 480), [(100, 50, 301, 377, 255)], crop=True, canvas="photo", fill=80),
    case("aspect of the photo, no crop", (641, 479), [(100, 50, 301, 377, 255)], canvas="photo", fill=80),
    case("fill 33.33", (640, 480), [(170, 140, 470, 340, 255)], crop=True, canvas="1000x1000", fill=33.33,
         upscale=True),
    case("fill 70, 9:16 size", (1200, 900), [(400, 100, 800, 850, 255)], crop=True, canvas="1080x1920", fill=70),
    case("align bottom", (640, 480), [(170, 140, 470, 340, 255)], crop=True, canvas="1000x1000", fill=85,
         align="bottom", upscale=True),
    case("align bottom, odd canvas", (640, 480), [(170, 140, 470, 341, 255)], crop=True, canvas="999x777",
         fill=87.5, align="bottom"),
    case("no crop, canvas WxH: the whole photo scaled", (640, 480), [(170, 140, 470, 340, 255)],
         canvas="500x500", fill=90),
    case("specks: cell 4 px, subject 30000 cells: a 1-cell speck dropped, a 300-cell one (1 %) kept", (1600, 1200),
         [(400, 300, 1200, 900, 255), (40, 40, 42, 42, 255), (1500, 1000, 1560, 1080, 200)], crop=True),
    case("specks: a 299-cell component (under 1 %) dropped", (1600, 1200),
         [(400, 300, 1200, 900, 255), (1500, 1000, 1552, 1092, 200)], crop=True),
    case("specks: cells not aligned with the speck (cell 3 px)", (1500, 1000),
         [(300, 200, 1200, 800, 255), (1, 1, 2, 2, 255), (1400, 900, 1402, 904, 255)], crop=True, margin="3px"),
    case("specks: diagonal neighbour joins the subject (8-connected)", (1600, 1200),
         [(400, 300, 1200, 900, 255), (1200, 900, 1203, 903, 255)], crop=True),
    case("specks: a faint halo (< 26) ignored", (800, 600),
         [(0, 0, 800, 600, 12), (200, 150, 600, 450, 255)], crop=True, margin="1%"),
    case("specks: two subjects of similar size both kept", (1024, 512),
         [(100, 100, 300, 400, 255), (700, 50, 900, 300, 255)], crop=True, canvas="1:1", fill=85),
    case("drop shadow, offset and blur", (640, 480), [(170, 140, 470, 340, 255)], crop=True,
         canvas="2000x2000", fill=85, shadow="drop", shadow_blur=4, shadow_offset="-2,3", upscale=True),
    case("drop shadow, default blur and offset", (640, 480), [(170, 140, 470, 340, 255)], crop=True,
         canvas="1000x1000", fill=85, shadow="drop"),
    case("contact shadow with a margin", (640, 480), [(170, 140, 470, 340, 255)], crop=True, margin="10%",
         canvas="1000x1000", fill=85, align="bottom", shadow="contact", upscale=True),
    case("contact shadow without crop", (640, 480), [(170, 140, 470, 340, 255)], shadow="contact"),
    case("one pixel photo", (1, 1), [(0, 0, 1, 1, 255)], crop=True, canvas="1:1", fill=50),
    case("tiny subject, large canvas, scale floor 1 px", (4000, 3000), [(10, 10, 11, 13, 255)], crop=True,
         canvas="20x20", fill=1),
]


def expected(spec: dict[str, Any]) -> dict[str, Any]:
    alpha = np.zeros((spec["height"], spec["width"]), np.uint8)
    for x0, y0, x1, y1, value in spec["rects"]:
        alpha[y0:y1, x0:x1] = value
    result = layout(alpha, **spec["options"])
    return {
        "layout": result.ints(),
        "box": list(result.box),
        "size": list(result.size),
        "canvas": list(result.canvas),
        "offset": list(result.offset),
        "subject": list(result.subject) if result.subject else None,
        "shadow_blur": result.shadow_blur,
        "shadow_offset": list(result.shadow_offset),
        "warnings": list(result.warnings),
    }


def vectors() -> dict[str, Any]:
    return {
        "about": "alphacut listing layout vectors: alpha = rects painted in order on a zero width x height photo;"
        " options as Options fields; expected from alphacut.listing.layout (scripts/listing_layouts.py)",
        "cases": [{**spec, "expected": expected(spec)} for spec in CASES],
    }


def main() -> None:
    text = json.dumps(vectors(), indent=1) + "\n"
    OUT.write_text(text)
    print(f"wrote {len(CASES)} cases to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
