"""Make the before/after pictures of docs/listing.md (docs/images/listing-*.jpg).

    python scripts/listing_examples.py [--model medium]

Each picture is one real photo of tests/data/photos run through the engine
(model, refinement, listing composition: the same code as ``alphacut cut``),
side by side: the photo | square-white-shadow | story-9x16-blur | a 1:1 canvas
on a brand colour with a drop shadow. The sample photos are small (600 px), so
the presets are asked to upscale (``upscale=True``); on real product photos
they never need to.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from alphacut import Options, Session, remove_background  # noqa: E402

PHOTOS = ROOT / "tests" / "data" / "photos"
OUT = ROOT / "docs" / "images"
HEIGHT = 360  # each panel's height in the picture
GAP = 12
EXAMPLES = ("car-3.jpg", "plants-1.jpg", "animal-2.jpg")
PANELS = (
    Options.from_preset("square-white-shadow", canvas="1000x1000", upscale=True),
    Options.from_preset("story-9x16-blur", upscale=True),
    Options(crop=True, canvas="1:1", fill=80, background="#e9dfd3", shadow="drop", upscale=True),
)


def panel(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    return im.resize((round(im.width * HEIGHT / im.height), HEIGHT), Image.Resampling.LANCZOS)


def picture(photo: Path, session: Session) -> Image.Image:
    panels = [panel(photo.read_bytes())]
    for options in PANELS:
        cutout = remove_background(photo, options=options, session=session)
        panels.append(panel(cutout.encode(options.replace(format="png"))))
    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    strip = Image.new("RGB", (width, HEIGHT), (255, 255, 255))
    x = 0
    for p in panels:
        strip.paste(p, (x, 0))
        x += p.width + GAP
    return strip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="medium")
    args = parser.parse_args()
    session = Session(args.model)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLES:
        dest = OUT / f"listing-{Path(name).stem}.jpg"
        picture(PHOTOS / name, session).save(dest, "JPEG", quality=85, optimize=True)
        print(f"{dest.relative_to(ROOT)}: {dest.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
