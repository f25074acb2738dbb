"""Make the example images of LIMITATIONS.md (docs/limitations/*.jpg).

    python scripts/limitations_examples.py [--model medium] [--data ../shared/data]

Each example is a real photo (or a real photo made harder: blurred,
composited on white, upscaled) run through the same pre graph + ISNet + post
graph as the engine, saved 480 px wide: original | cutout over a checkerboard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from alphacut import Options, Session, remove_background  # noqa: E402

OUT = ROOT / "docs" / "limitations"
WIDTH = 480


def checker(h: int, w: int, cell: int = 12) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    light = ((y // cell + x // cell) % 2).astype(np.float32)
    return (0.6 + 0.25 * light)[..., None].repeat(3, axis=2)


def side_by_side(photo: np.ndarray, alpha: np.ndarray, fg: np.ndarray) -> Image.Image:
    cut = alpha[..., None] * fg + (1 - alpha[..., None]) * checker(*alpha.shape)
    both = np.concatenate([photo[..., :3].astype(np.float32) / 255, cut], axis=1)
    img = Image.fromarray(np.clip(both * 255 + 0.5, 0, 255).astype(np.uint8))
    return img.resize((WIDTH, round(img.height * WIDTH / img.width)), Image.Resampling.LANCZOS)


class Cutter:
    """The engine itself: the same decode-free path as ``remove_background`` on an array."""

    def __init__(self, model: str) -> None:
        self.session = Session(model)

    def __call__(self, photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cutout = remove_background(photo, session=self.session, options=Options(max_megapixels=1000))
        return cutout.alpha, cutout.rgba[..., :3].astype(np.float32) / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="medium", help="model name (see `alphacut models list`)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the sample data folder")
    args = ap.parse_args()
    cut = Cutter(args.model)
    photos, matting = args.data / "photos", args.data / "matting"

    def load(name: str) -> np.ndarray:
        return np.asarray(Image.open(photos / name).convert("RGB"))

    examples: dict[str, np.ndarray] = {}
    examples["unsure"] = load("plants-1.jpg")
    examples["flyaway-hair"] = load("girl-2.jpg")
    examples["glass"] = load("car-1.jpg")
    # Motion blur: a real photo smeared by a 41-px horizontal line kernel.
    kernel = np.full((1, 41), 1 / 41, np.float32)
    examples["motion-blur"] = cv2.filter2D(load("animal-1.jpg"), -1, kernel, borderType=cv2.BORDER_REFLECT)
    # White on white: the lemur's white fur composited with its true alpha on white.
    fg = np.asarray(Image.open(matting / "lemur_foreground.png").convert("RGB"), np.float32)
    a = np.asarray(Image.open(matting / "lemur_alpha.png").convert("L"), np.float32)[..., None] / 255
    examples["white-on-white"] = np.clip(fg * a + 255 * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    # What the subject stands on: the lemur photo itself, on its log.
    examples["support"] = np.asarray(Image.open(matting / "lemur.png").convert("RGB"))

    OUT.mkdir(parents=True, exist_ok=True)
    for name, photo in examples.items():
        alpha, fgc = cut(photo)
        side_by_side(photo, alpha, fgc).save(OUT / f"{name}.jpg", quality=85)
        print(OUT / f"{name}.jpg")

    # Very large: a 24 MP upscale of a furry animal; a 1:1 crop of its edge
    # shows that fur thinner than one working-resolution pixel (~6 px here)
    # is refined from colour only.
    big = np.asarray(Image.fromarray(load("animal-2.jpg")).resize((4286, 4920), Image.Resampling.LANCZOS))
    alpha, fgc = cut(big)
    cols = np.flatnonzero((alpha > 0.5).any(axis=0))
    x0 = max(0, int(cols[0]) - 200) if cols.size else 0
    y0 = big.shape[0] // 3
    crop = np.s_[y0 : y0 + 500, x0 : x0 + 700]
    side_by_side(big[crop], alpha[crop], fgc[crop]).save(OUT / "very-large.jpg", quality=85)
    print(OUT / "very-large.jpg")


if __name__ == "__main__":
    main()
