"""A cheap confidence score for a cutout, from the model's own mask.

NumPy and OpenCV's morphology. The idea: where the model is sure, its mask *commits* near the
subject's outline (it reaches near 0 on one side and near 1 on the other
within a few pixels). Where it is unsure, the outline is mush: the mask stays
in the middle range. We measure the share of the outline that never commits,
plus a few whole-image flags that usually mean "no real subject" (nothing
found, or everything kept).

The pipeline scores the model's mask (1024 x 1024 for ISNet), not the refined
alpha: the model's doubt is what predicts a wrong cutout, and the score then
does not depend on the photo's size or on how the edges are refined. Any
matte works (it is first reduced, by block means, to a long side of at most
``WORK_SIZE``). Thresholds were set on the ``ecssd`` photos of
``benchmarks/quality.py``: about a fifth flagged, catching most of the worst
tenth by IoU (figures in ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Confidence", "edge_confidence"]

WORK_SIZE = 1024  # long side the matte is reduced to before measuring
OPAQUE = 0.5  # alpha above this counts as subject
EMPTY_SHARE = 0.001  # subject covers < 0.1 % of the image: nothing found
FULL_SHARE = 0.98  # subject covers > 98 % of the image: nothing removed
COMMIT_RADIUS = 16  # px (at WORK_SIZE) within which an edge must commit (fur needs ~8)
COMMIT_LOW = 0.1  # ... reaching below this on the background side
COMMIT_HIGH = 0.9  # ... and above this on the subject side
BORDER_SHARE = 0.01  # > 1 % of the frame's border is subject: touches border
REVIEW_SCORE = 0.84  # below this score a person should look at the cutout
FULL_FRAME_SCORE = 0.3  # score cap when the subject fills the frame


@dataclass(frozen=True)
class Confidence:
    """How much to trust a cutout; see the module docstring for the method."""

    score: float  # 0 (do not trust) .. 1 (crisp, committed outline)
    empty: bool  # no subject found
    fills_frame: bool  # the "subject" is (almost) the whole image
    touches_border: bool  # the subject is cut by the image border
    subject_share: float  # share of pixels with alpha > 0.5
    uncertain_outline: float  # share of the outline where the matte never commits
    needs_review: bool


def _reduce(alpha: np.ndarray) -> np.ndarray:
    """Block-mean down to at most WORK_SIZE on the long side (integer factor)."""
    f = -(-max(alpha.shape) // WORK_SIZE)
    if f == 1:
        return alpha
    h, w = (alpha.shape[0] // f) * f, (alpha.shape[1] // f) * f
    if h == 0 or w == 0:  # extremely thin strip: keep it as is
        return alpha
    reduced: np.ndarray = alpha[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    return reduced


def _window_extreme(x: np.ndarray, r: int, op: str) -> np.ndarray:
    """(2r+1)^2 max (``op="max"``) or min filter; the window is cut at the image's border
    (the same as padding with the edge's values)."""
    import cv2  # imported on first use, as in imageio: about 0.1 s

    kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    morph = cv2.dilate if op == "max" else cv2.erode
    out: np.ndarray = morph(x, kernel, borderType=cv2.BORDER_REPLICATE)
    return out


def edge_confidence(alpha: np.ndarray) -> Confidence:
    """Score a matte: float array in [0, 1], shape (H, W) or (1, 1, H, W)."""
    a = np.asarray(alpha)
    if a.ndim == 4 and a.shape[:2] == (1, 1):
        a = a[0, 0]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"alpha must be a non-empty (H, W) or (1, 1, H, W) array, got {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"alpha must be floating point in [0, 1], got {a.dtype}")
    a = _reduce(a.astype(np.float32, copy=False))

    subject = a > OPAQUE
    share = float(subject.mean())
    empty = share < EMPTY_SHARE
    fills = share > FULL_SHARE
    border = np.concatenate([subject[0], subject[-1], subject[:, 0], subject[:, -1]])
    touches = bool(border.mean() > BORDER_SHARE)

    # Outline: subject pixels with a non-subject 4-neighbour.
    inner = subject.copy()
    inner[1:] &= subject[:-1]
    inner[:-1] &= subject[1:]
    inner[:, 1:] &= subject[:, :-1]
    inner[:, :-1] &= subject[:, 1:]
    outline = subject & ~inner
    if outline.any():
        hi = _window_extreme(a, COMMIT_RADIUS, "max")[outline]
        lo = _window_extreme(a, COMMIT_RADIUS, "min")[outline]
        uncertain = float(np.mean((hi < COMMIT_HIGH) | (lo > COMMIT_LOW)))
    else:
        uncertain = 0.0

    if empty:
        score = 0.0
    else:
        score = 1.0 - uncertain
        if fills:
            score = min(score, FULL_FRAME_SCORE)
    return Confidence(
        score=round(score, 4),
        empty=empty,
        fills_frame=fills,
        touches_border=touches,
        subject_share=share,
        uncertain_outline=uncertain,
        needs_review=empty or fills or score < REVIEW_SCORE,
    )
