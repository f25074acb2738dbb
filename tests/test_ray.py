"""batch --engine ray on a local two-CPU Ray instance: the same outputs and ledger as the local engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut import Options

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'alphacut[ray]')")

PHOTOS = Path(__file__).parent / "data" / "photos"
pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_ray_engine_matches_local_engine(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from alphacut.batch import run_batch
    from alphacut.ledger import LEDGER_NAME, Ledger
    from alphacut.ray_engine import run_ray

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(PHOTOS / "girl-1.jpg", src / "sub" / "girl-1.jpg")
    (src / "broken.png").write_bytes(b"not a png")

    local = run_batch(src, tmp_path / "local", options=Options(), session=session)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        report = run_ray(str(src), tmp_path / "ray", options=Options(), device="cpu")
        again = run_ray(str(src), tmp_path / "ray", options=Options(), device="cpu")
    finally:
        ray.shutdown()

    assert report.done == 1 and report.failed == 1 and again.skipped == 1 and again.done == 0
    a = np.asarray(Image.open(tmp_path / "local" / "sub" / "girl-1.png"), np.float32)[..., 3] / 255
    b = np.asarray(Image.open(tmp_path / "ray" / "sub" / "girl-1.png"), np.float32)[..., 3] / 255
    assert float(np.abs(a - b).mean()) < 1e-3
    with Ledger(tmp_path / "local" / LEDGER_NAME) as l1, Ledger(tmp_path / "ray" / LEDGER_NAME) as l2:
        rows1 = [(e.path, e.status, e.output, e.sha256, e.error) for e in l1.entries()]
        rows2 = [(e.path, e.status, e.output, e.sha256, e.error) for e in l2.entries()]
    assert rows1 == rows2
    assert local.as_dict()["counts"]["ok"] == report.as_dict()["counts"]["ok"] == 1


def test_missing_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    from alphacut.errors import AlphacutError
    from alphacut.ray_engine import run_ray

    real_import = builtins.__import__

    def no_ray(name: str, *a, **k):  # type: ignore[no-untyped-def]
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(AlphacutError, match=r"pip install 'alphacut\[ray\]'"):
        run_ray(str(tmp_path), tmp_path / "out", options=Options())
