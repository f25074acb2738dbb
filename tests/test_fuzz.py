"""Fuzz: hundreds of damaged PNG, JPEG, WebP, TIFF, GIF, HEIC and BMP files through ``batch`` and the API.

Every file is either done or a clean error (one line that says what to do), never a
traceback or a 500, and the good files among them are still done. The files come
from :mod:`fuzz_images` (seeded: a failure names its case and can be replayed with
``cases(n, seed=...)``). The model is a stand-in here, for speed; the longer run
(5,000+ files) is ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest
from fake_session import FakeSession
from fuzz_images import Case, cases, is_clean_error
from PIL import Image

from alphacut import Options
from alphacut.batch import run_batch
from alphacut.jobs import REPORT_JSON

# Decodable mutants can claim sizes up to the cap: a small cap keeps the run in seconds
# (the cap itself is tested in test_imageio).
MAX_MP = 4.0
pytestmark = pytest.mark.filterwarnings("ignore")  # Pillow warns about every damaged TIFF tag


def _write(folder: Path, batch: list[Case]) -> None:
    folder.mkdir(parents=True)
    for case in batch:
        (folder / case.name).write_bytes(case.data)


def test_500_damaged_files_through_batch(tmp_path: Path) -> None:
    batch = list(cases(520, seed=10))
    src, out = tmp_path / "in", tmp_path / "out"
    _write(src, batch)
    report = run_batch(src, out, options=Options(max_megapixels=MAX_MP), session=FakeSession())

    rows = {e.path: e for e in report.entries}
    assert len(rows) == len(batch), "every file has its row"
    recipes = {c.name: c.recipe for c in batch}
    for name, row in rows.items():
        assert row.status in ("done", "failed"), name
        if row.status == "failed":
            assert is_clean_error(row.error), f"{name} ({recipes[name]}): {row.error!r}"
        else:
            with Image.open(out / str(row.output)) as im:
                im.load()
                assert im.mode == "RGBA"
    good = [c.name for c in batch if c.recipe == "good"]
    assert len(good) >= 50 and all(rows[n].status == "done" for n in good), "good files beside bad ones are done"
    counts = json.loads((out / REPORT_JSON).read_text())["counts"]
    assert counts["inputs"] == len(batch) and counts["ok"] + counts["failed"] == len(batch)
    assert 0 < counts["failed"] < len(batch)


def test_500_damaged_files_through_the_api() -> None:
    from alphacut.web.api import api_routes
    from alphacut.web.app import create_app

    fake = FakeSession()
    app = create_app(extra_routes=api_routes(lambda: fake))
    batch = list(cases(510, seed=11))

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return [await client.post(f"/api/v1/cutout?max_megapixels={MAX_MP}", content=c.data,
                                      headers={"Content-Type": "application/octet-stream"}) for c in batch]

    responses = asyncio.run(post_all())
    statuses: dict[int, int] = {}
    for case, r in zip(batch, responses):
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code in (200, 413, 415, 422), f"{case.name} ({case.recipe}): {r.status_code} {r.text[:200]}"
        if r.status_code == 200:
            with Image.open(io.BytesIO(r.content)) as im:
                im.load()
        else:
            assert r.headers["content-type"].startswith("application/json"), case.name
            assert is_clean_error(r.json()["error"]), f"{case.name} ({case.recipe}): {r.text[:300]}"
        if case.recipe == "good":
            assert r.status_code == 200, f"{case.name}: {r.text[:200]}"
    assert statuses.get(200, 0) >= 51 and sum(v for k, v in statuses.items() if k != 200) > 0


@pytest.mark.model
def test_damaged_files_beside_good_ones_with_the_real_model(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from alphacut import imageio

    def decodes(case: Case) -> bool:
        try:
            imageio.decode(case.data, max_megapixels=MAX_MP)
        except Exception:  # noqa: BLE001 - any failure to decode means "not a good file"
            return False
        return True

    pool = list(cases(60, seed=12))
    # Three model calls (two good files, one damaged but decodable) beside six that fail to decode.
    batch = ([c for c in pool if c.recipe == "good"][:2] + [c for c in pool if c.recipe != "good" and decodes(c)][:1]
             + [c for c in pool if c.recipe != "good" and not decodes(c)][:6])
    src, out = tmp_path / "in", tmp_path / "out"
    _write(src, batch)
    report = run_batch(src, out, options=Options(max_megapixels=MAX_MP), session=session)
    rows = {e.path: e for e in report.entries}
    assert len(rows) == len(batch)
    for case in batch:
        row = rows[case.name]
        assert row.status == "done" or is_clean_error(row.error), f"{case.name} ({case.recipe}): {row.error!r}"
        if case.recipe == "good":
            assert row.status == "done"
