"""edge_confidence on real and synthetic mattes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from alphacut.confidence import Confidence, edge_confidence

DATA = Path(__file__).parent / "data"


def _disk(h: int = 400, w: int = 600, r: int = 120) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return (((y - h / 2) ** 2 + (x - w / 2) ** 2) < r**2).astype(np.float32)


def test_crisp_subject_is_trusted() -> None:
    c = edge_confidence(_disk())
    assert isinstance(c, Confidence)
    assert c.score > 0.95 and not c.needs_review
    assert not (c.empty or c.fills_frame or c.touches_border)


def test_real_matte_is_trusted() -> None:
    alpha = np.asarray(Image.open(DATA / "matting" / "lemur_alpha.png").convert("L"), np.float32) / 255
    c = edge_confidence(alpha)
    assert 0.0 < c.score <= 1.0 and c.touches_border  # the lemur sits on the bottom edge
    assert c.uncertain_outline < 0.25


def test_mushy_outline_needs_review() -> None:
    mush = 0.2 + 0.6 * ndimage.gaussian_filter(_disk(), 25)  # never commits to 0 or 1
    c = edge_confidence(mush.astype(np.float32))
    assert c.uncertain_outline > 0.9
    assert c.score < 0.5 and c.needs_review


def test_empty_and_full() -> None:
    empty = edge_confidence(np.zeros((50, 80), np.float32))
    assert empty.empty and empty.score == 0 and empty.needs_review
    full = edge_confidence(np.ones((50, 80), np.float32))
    assert full.fills_frame and full.touches_border and full.needs_review and full.score <= 0.3


def test_accepts_graph_output_layout_and_validates() -> None:
    a = _disk()[None, None]
    assert edge_confidence(a) == edge_confidence(a[0, 0])
    with pytest.raises(ValueError, match="floating"):
        edge_confidence((a[0, 0] * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="shape|array"):
        edge_confidence(np.zeros((2, 3, 4), np.float32))


def test_resolution_independent() -> None:
    small = edge_confidence(_disk(300, 400, 100))
    big_alpha = np.asarray(
        Image.fromarray((_disk(300, 400, 100) * 255).astype(np.uint8)).resize((4000, 3000)), np.float32
    ) / 255
    big = edge_confidence(big_alpha)
    assert abs(big.score - small.score) < 0.05 and big.needs_review == small.needs_review
