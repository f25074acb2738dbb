"""The page's review flag (static/review.js), run in Node: the same edge-confidence score as
the engine's ``alphacut.confidence.edge_confidence`` on the same masks, flag for flag."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from alphacut.confidence import edge_confidence

REVIEW_JS = Path(__file__).parents[2] / "src" / "alphacut" / "web" / "static" / "review.js"
PHOTOS = Path(__file__).parents[1] / "data" / "photos"

SCRIPT = """
import { edgeConfidence } from %(module)s;
import fs from "node:fs";
const out = [];
for (const { file, width, height } of JSON.parse(fs.readFileSync(%(cases)s, "utf8"))) {
  const bytes = fs.readFileSync(file);
  const mask = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  out.push(edgeConfidence(mask, width, height));
}
console.log(JSON.stringify(out));
"""


def _masks() -> dict[str, np.ndarray]:
    """Masks that exercise each part of the score: none found, the whole frame, soft and
    crisp outlines, outlines whose values sit exactly on the thresholds, the border, and a
    mask larger than the working size (reduced by block means) or a thin strip."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:1024, :1024] / 1024
    r = np.hypot(yy - 0.5, xx - 0.45)
    masks = {
        "empty": np.zeros((1024, 1024), np.float32),
        "full": np.ones((1024, 1024), np.float32),
        "crisp disc": (r < 0.3).astype(np.float32),
        "soft disc": np.clip((0.35 - r) * 8, 0, 1).astype(np.float32),
        "mush": np.clip((0.35 - r) * 2 + 0.3, 0, 1).astype(np.float32),
        "noisy": np.clip((0.3 - r) * 10 + rng.normal(0, 0.2, r.shape), 0, 1).astype(np.float32),
        "at the border": np.clip((0.5 - np.abs(yy - 0.2)) * 6 - 1, 0, 1).astype(np.float32),
    }
    # Outline values exactly at the float32 thresholds (0.1 and 0.9) on either side.
    edge = np.where(r < 0.3, np.float32(0.9), np.float32(0.1)).astype(np.float32)
    edge[r < 0.2] = 1
    masks["on the thresholds"] = edge
    big = np.asarray(Image.fromarray(masks["noisy"]).resize((2100, 1500), Image.Resampling.BILINEAR), np.float32)
    masks["larger than 1024"] = np.ascontiguousarray(big)
    masks["thin strip"] = np.clip(rng.random((3, 3000)) * 1.4 - 0.2, 0, 1).astype(np.float32)
    return masks


def _run_js(masks: dict[str, np.ndarray], folder: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "Node.js is needed (the set-up fetches the page's runtime with npm)"
    cases = []
    for i, mask in enumerate(masks.values()):
        path = folder / f"{i}.f32"
        np.ascontiguousarray(mask, np.float32).tofile(path)
        cases.append({"file": str(path), "width": mask.shape[1], "height": mask.shape[0]})
    (folder / "cases.json").write_text(json.dumps(cases))
    script = folder / "review.mjs"
    script.write_text(SCRIPT % {"module": repr(REVIEW_JS.as_uri()), "cases": repr(str(folder / "cases.json"))})
    done = subprocess.run([node, str(script)], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def _same(name: str, js: dict[str, Any], mask: np.ndarray) -> None:
    want = edge_confidence(mask)
    assert js["needsReview"] == want.needs_review, name
    assert js["empty"] == want.empty and js["fillsFrame"] == want.fills_frame, name
    assert js["touchesBorder"] == want.touches_border, name
    assert js["subjectShare"] == want.subject_share, name
    assert js["uncertainOutline"] == want.uncertain_outline, name
    assert abs(js["score"] - want.score) <= 1e-4, name  # rounded to 4 places in each language


def test_review_flag_matches_the_engine(tmp_path: Path) -> None:
    masks = _masks()
    results = _run_js(masks, tmp_path)
    for (name, mask), js in zip(masks.items(), results):
        _same(name, js, mask)
    flagged = {name for (name, _), js in zip(masks.items(), results) if js["needsReview"]}
    assert {"empty", "full", "mush"} <= flagged and "crisp disc" not in flagged, flagged


@pytest.mark.model
def test_review_flag_matches_the_engine_on_model_masks(session: Any, tmp_path: Path) -> None:
    """The model's own masks of real photos: one flagged (plants-1: leaves the model half
    keeps), three not."""
    masks = {}
    for path in sorted(PHOTOS.glob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        masks[path.name] = session.predict_mask(rgb)[0, 0]
    results = _run_js(masks, tmp_path)
    for (name, mask), js in zip(masks.items(), results):
        _same(name, js, mask)
    assert [name for (name, _), js in zip(masks.items(), results) if js["needsReview"]] == ["plants-1.jpg"]
