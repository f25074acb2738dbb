"""The opt-in HTTP API, in-process with httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fake_session import FakeSession
from image_builders import noise, solid
from PIL import Image
from starlette.applications import Starlette

from alphacut import Options
from alphacut.web.api import api_routes

PHOTOS = Path(__file__).parent / "data" / "photos"
URL = "/api/v1/cutout"


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


def _app(session: Any = None, **limits: Any) -> Starlette:
    session = session or FakeSession()
    return Starlette(routes=api_routes(lambda: session, **limits))


async def _post(app: Any, **kw: Any) -> httpx.Response:
    async with _client(app) as c:
        return await c.post(kw.pop("url", URL), **kw)


@pytest.mark.model
def test_real_photo_gives_the_library_cutout(session) -> None:  # type: ignore[no-untyped-def]
    from alphacut import remove_background

    data = (PHOTOS / "girl-1.jpg").read_bytes()
    r = asyncio.run(_post(_app(session), content=data, headers={"Content-Type": "image/jpeg"}))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    im = Image.open(io.BytesIO(r.content))
    assert im.mode == "RGBA" and im.size == (600, 399)
    expected = remove_background(data, session=session)
    assert np.array_equal(np.asarray(im)[..., 3], expected.rgba[..., 3])
    assert float(r.headers["x-alphacut-confidence"]) == pytest.approx(expected.confidence.score, abs=1e-4)


def test_raw_body_and_multipart_with_options() -> None:
    app = _app()
    r = asyncio.run(_post(app, content=solid((64, 48))))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "no-store"
    assert Image.open(io.BytesIO(r.content)).mode == "RGBA"

    r = asyncio.run(_post(app, url=URL + "?format=jpeg&background=%23000000",
                          files={"file": ("x.png", solid((64, 48)), "image/png")}))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    r = asyncio.run(_post(app, url=URL + "?mask=true", content=solid((64, 48))))
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).mode == "L"
    r = asyncio.run(_post(app, url=URL + "?format=webp&refine=false&foreground=0", content=solid((64, 48))))
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    r = asyncio.run(_post(app, url=URL + "?edges=crisp", content=solid((64, 48))))
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).mode == "RGBA"


def test_multipart_upload_never_touches_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_disk(*a: Any, **k: Any) -> Any:
        raise AssertionError("an upload was about to be written to a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_disk)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_disk)
    big = noise((1000, 800))
    assert len(big) > 2 * 1024 * 1024  # over starlette's 1 MB in-memory spool
    r = asyncio.run(_post(_app(max_bytes=8 * 1024 * 1024), files={"file": ("big.png", big, "image/png")}))
    assert r.status_code == 200


def test_byte_cap_is_checked_while_streaming() -> None:
    sent = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"\0" * 10_000

    r = asyncio.run(_post(_app(max_bytes=50_000), content=body()))
    assert r.status_code == 413 and "byte cap" in r.json()["error"]
    assert len(sent) < 100  # refused before the whole body was read

    r = asyncio.run(_post(_app(max_bytes=50_000), content=b"\0" * 60_000))  # Content-Length alone decides
    assert r.status_code == 413


def test_megapixel_cap_is_413_and_cannot_be_raised_by_a_request() -> None:
    app = _app(max_megapixels=0.001)
    r = asyncio.run(_post(app, content=solid((64, 48))))
    assert r.status_code == 413 and "megapixels" in r.json()["error"]
    r = asyncio.run(_post(app, url=URL + "?max_megapixels=1000", content=solid((64, 48))))
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "ctype", "status", "words"),
    [
        (b"hello, world", "application/octet-stream", 415, "not an image"),
        (b"{}", "application/json", 415, "not an image"),
        (b"", "image/png", 422, "empty"),
        ((PHOTOS / "girl-1.jpg").read_bytes()[:9000], "image/jpeg", 422, "truncated"),
    ],
)
def test_unusable_images_get_json_errors(body: bytes, ctype: str, status: int, words: str) -> None:
    r = asyncio.run(_post(_app(), content=body, headers={"Content-Type": ctype}))
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert words in r.json()["error"]


@pytest.mark.parametrize(
    ("query", "words"),
    [("bogus=1", "unknown query parameter 'bogus'"), ("mask=maybe", "true or false"),
     ("format=gif", "use one of png, webp, jpeg"), ("max_megapixels=nan", "finite"),
     ("background=notacolour", "cannot read colour"), ("mask=1&mask=0", "twice"),
     ("edges=blurry", "use one of auto, crisp, soft")],
)
def test_bad_options_are_400(query: str, words: str) -> None:
    r = asyncio.run(_post(_app(), url=f"{URL}?{query}", content=solid((64, 48))))
    assert r.status_code == 400 and words in r.json()["error"]


def test_multipart_without_file_field_is_400() -> None:
    r = asyncio.run(_post(_app(), files={"image": ("x.png", solid((64, 48)), "image/png")}))
    assert r.status_code == 400 and "`file`" in r.json()["error"]


def test_start_mask_field_is_refined_instead_of_the_model() -> None:
    fake = FakeSession()
    app = _app(fake)
    mask = np.zeros((24, 32), np.uint8)  # half the photo's size, its aspect ratio
    mask[6:18, 8:24] = 255
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, "PNG")
    r = asyncio.run(_post(app, url=URL + "?mask=true", files={"file": ("x.png", solid((64, 48)), "image/png"),
                                                               "start_mask": ("m.png", buf.getvalue(), "image/png")}))
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (64, 48)
    assert fake.calls == 0, "the model was not run"
    (given,) = fake.post_masks
    assert np.array_equal(given[0, 0], mask.astype(np.float32) / 255.0)
    # A mask of another shape is the input's fault, and says so.
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 48), np.uint8)).save(buf, "PNG")
    r = asyncio.run(_post(app, files={"file": ("x.png", solid((64, 48)), "image/png"),
                                      "start_mask": ("m.png", buf.getvalue(), "image/png")}))
    assert r.status_code == 422 and "aspect ratios" in r.json()["error"]
    r = asyncio.run(_post(app, files={"file": ("x.png", solid((64, 48)), "image/png"),
                                      "start_mask": ("m.png", b"not a mask", "image/png")}))
    assert r.status_code == 415 and r.json()["error"].startswith("the start mask: not an image")
    r = asyncio.run(_post(app, files={"file": ("x.png", solid((64, 48)), "image/png"),  # an image, cut short
                                      "start_mask": ("m.png", buf.getvalue()[:60], "image/png")}))
    assert r.status_code == 422 and r.json()["error"].startswith("the start mask")
    r = asyncio.run(_post(app, files={"file": ("x.png", solid((64, 48)), "image/png")}, data={"start_mask": "x"}))
    assert r.status_code == 400 and "must be a file" in r.json()["error"]
    assert fake.calls == 0


def test_full_queue_answers_503_with_retry_after() -> None:
    slow = FakeSession(delay=0.5)
    app = _app(slow, queue=1)

    async def burst() -> list[httpx.Response]:
        async with _client(app) as c:
            return list(await asyncio.gather(*(c.post(URL, content=solid((64, 48))) for _ in range(5))))

    statuses = sorted(r.status_code for r in asyncio.run(burst()))
    assert statuses == [200, 200, 503, 503, 503]
    assert slow.max_running == 1  # one at a time on a CPU
    busy = [r for r in asyncio.run(burst()) if r.status_code == 503]
    assert busy and all(int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"] for r in busy)


def test_openapi_is_built_from_options_fields() -> None:
    async def get() -> httpx.Response:
        async with _client(_app(max_bytes=1234, max_megapixels=50)) as c:
            return await c.get("/api/v1/openapi.json")

    schema = asyncio.run(get()).json()
    op = schema["paths"][URL]["post"]
    params = {p["name"]: p for p in op["parameters"]}
    # Every field but background_image (a server path: never), and the preset first.
    fields = [f for f in Options.fields() if f.name != "background_image"]
    assert list(params) == ["preset"] + [f.name for f in fields]
    assert "square-white" in params["preset"]["schema"]["enum"]
    for f in fields:
        if f.name != "max_megapixels":
            assert params[f.name]["schema"]["default"] == f.default
    assert params["format"]["schema"]["enum"] == ["png", "webp", "jpeg"]
    assert params["mask"]["schema"]["type"] == "boolean"
    assert params["background"]["schema"]["nullable"] is True
    assert params["max_megapixels"]["schema"]["maximum"] == 50
    assert set(op["responses"]) >= {"200", "413", "415", "422", "503"}
    assert "1234" in op["requestBody"]["description"]
    assert schema["openapi"].startswith("3.")


@pytest.mark.model  # create_app() serves the real model's files
def test_the_web_app_takes_uploads_only_with_the_api(isnet_model_path: Path) -> None:
    from alphacut.web.app import create_app

    async def post(app: Any, host: str = "127.0.0.1") -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}") as c:
            return await c.post(URL, content=solid((64, 48)))

    assert asyncio.run(post(create_app())).status_code in (404, 405)
    with_api = create_app(extra_routes=api_routes(FakeSession))
    assert asyncio.run(post(with_api)).status_code == 200
    assert asyncio.run(post(with_api, host="evil.example")).status_code == 400  # the Host check still applies


# --- who may call, and what is read before refusing -------------------------------------------------


def _counting_body(sent: list[int], chunks: int = 50, size: int = 10_000) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for _ in range(chunks):
            sent.append(size)
            yield b"\0" * size

    return gen()


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:8000"},
     {"Origin": "http://localhost"}, {"Origin": "https://127.0.0.1.evil.example"},
     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
     {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "cross-site"}],
)
def test_cross_origin_requests_are_403_before_the_body_is_read(headers: dict[str, str]) -> None:
    sent: list[int] = []
    r = asyncio.run(_post(_app(), content=_counting_body(sent), headers={"Content-Type": "image/png", **headers}))
    assert r.status_code == 403 and r.headers["content-type"] == "application/json"
    assert "cross-origin" in r.json()["error"] and "script" in r.json()["error"]
    assert sent == []  # refused on the headers alone


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://127.0.0.1"}, {"Origin": "http://127.0.0.1:80"}, {"Sec-Fetch-Site": "same-origin"},
     {"Sec-Fetch-Site": "none"}, {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}],
)
def test_same_origin_and_non_browser_requests_are_served(headers: dict[str, str]) -> None:
    assert asyncio.run(_post(_app(), content=solid((64, 48)), headers=headers)).status_code == 200


def test_api_key_is_required_when_set() -> None:
    key = "k" * 20 + "-secret"
    app = _app(api_key=key)
    r = asyncio.run(_post(app, content=solid((64, 48))))
    assert r.status_code == 401 and "API key" in r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = asyncio.run(_post(app, content=solid((64, 48)), headers={"Authorization": "Bearer " + key[:-1] + "X"}))
    assert r.status_code == 401 and "wrong API key" in r.json()["error"]
    assert asyncio.run(_post(app, content=solid((64, 48)), headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert asyncio.run(_post(app, content=solid((64, 48)), headers={"X-API-Key": key})).status_code == 200

    async def schema(headers: dict[str, str]) -> int:
        async with _client(app) as c:
            return (await c.get("/api/v1/openapi.json", headers=headers)).status_code

    assert asyncio.run(schema({})) == 401 and asyncio.run(schema({"X-API-Key": key})) == 200


def test_the_queue_is_checked_before_the_body_is_read() -> None:
    slow = FakeSession(delay=0.5)
    app = _app(slow, queue=0)  # one running, none waiting
    sent: list[int] = []

    async def two() -> tuple[httpx.Response, httpx.Response]:
        async with _client(app) as c:
            first = asyncio.create_task(c.post(URL, content=solid((64, 48))))
            while slow.running == 0:  # noqa: ASYNC110 - a worker thread sets it: no event to await
                await asyncio.sleep(0.01)
            second = await c.post(URL, content=_counting_body(sent))
            return await first, second

    first, second = asyncio.run(two())
    assert first.status_code == 200
    assert second.status_code == 503 and int(second.headers["retry-after"]) >= 1
    assert sent == []


def test_declared_length_over_the_cap_is_413_before_the_body_is_read() -> None:
    sent: list[int] = []
    r = asyncio.run(_post(_app(max_bytes=50_000), content=_counting_body(sent),
                          headers={"Content-Length": "500000"}))
    assert r.status_code == 413 and sent == []
    r = asyncio.run(_post(_app(), content=solid((64, 48)), headers={"Content-Length": "12x"}))
    assert r.status_code == 400 and "Content-Length" in r.json()["error"]


def test_curl_default_content_type_is_sniffed() -> None:
    # `curl --data-binary @photo.jpg URL` sends application/x-www-form-urlencoded.
    jpeg = (PHOTOS / "girl-1.jpg").read_bytes()
    r = asyncio.run(_post(_app(), content=jpeg, headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (600, 399)
    r = asyncio.run(_post(_app(), content=b"a=1&b=2", headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert r.status_code == 415 and "not an image" in r.json()["error"]


# --- every input's fault is a 4xx -----------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_declaring_240000000x1_is_413_not_500() -> None:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 240_000_000, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    assert len(bomb) < 100
    r = asyncio.run(_post(_app(), content=bomb, headers={"Content-Type": "image/png"}))
    assert r.status_code == 413 and r.headers["content-type"] == "application/json"


def test_png_with_a_broken_header_crc_is_422_corrupt() -> None:
    data = bytearray(solid((64, 48)))
    data[29] ^= 0xFF  # IHDR's CRC
    r = asyncio.run(_post(_app(), content=bytes(data), headers={"Content-Type": "image/png"}))
    assert r.status_code == 422 and "corrupt" in r.json()["error"]


@pytest.mark.parametrize(
    ("exc", "status"),
    [(MemoryError(), 413), (TypeError("unsupported operand"), 422), (KeyError(273), 422),
     (SyntaxError("not a TIFF file"), 422), (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 422),
     (ValueError("tile cannot extend outside image"), 422), (OSError("broken data stream"), 422)],
)
def test_whatever_the_decoder_raises_is_a_json_4xx(monkeypatch: pytest.MonkeyPatch, exc: Exception,
                                                  status: int) -> None:
    from alphacut import imageio

    def broken(*a: Any, **k: Any) -> Any:
        raise exc

    monkeypatch.setattr(imageio, "decode", broken)
    r = asyncio.run(_post(_app(), content=solid((64, 48))))
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert ("smaller image" in error) if status == 413 else ("corrupt" in error and "re-export" in error)


def test_a_fault_of_the_server_is_a_json_500_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from alphacut import pipeline

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("a bug in the pipeline")

    monkeypatch.setattr(pipeline, "cut", broken)
    r = asyncio.run(_post(_app(), content=solid((64, 48))))
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert "internal error (RuntimeError)" in r.json()["error"] and "a bug" not in r.json()["error"]


def test_held_large_uploads_fill_the_byte_budget_not_every_place() -> None:
    app = _app(max_bytes=100_000, queue=4, body_timeout=5.0)  # byte budget: 2.5 x 100 000
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield b"\0" * 50_000
        await release.wait()  # a client that stops sending
        yield b"\0" * 49_999

    async def scenario() -> list[int]:
        async with _client(app) as c:
            headers = {"Content-Length": "100000", "Content-Type": "image/png"}
            held = [asyncio.create_task(c.post(URL, content=held_body(), headers=headers)) for _ in range(2)]
            await asyncio.sleep(0.2)  # both admitted and waiting for their bodies
            sent: list[int] = []
            third = await c.post(URL, content=_counting_body(sent, chunks=10), headers=headers)
            small = await c.post(URL, content=solid((64, 48)))
            release.set()
            return [third.status_code, len(sent), small.status_code] + [(await t).status_code for t in held]

    third, third_sent, small, *held = asyncio.run(scenario())
    assert third == 503 and third_sent == 0  # a third large upload does not fit: refused unread
    assert small == 200  # while a small request still gets in
    assert held == [415, 415]  # and the held ones, once sent, are answered (zeros: not an image)


def test_listing_options_preset_and_background_image() -> None:
    app = _app()
    photo = solid((120, 90), (30, 60, 90))
    # A preset, with a query option overriding one of its values.
    r = asyncio.run(_post(app, url=URL + "?preset=square-white&canvas=300x200&format=jpeg", content=photo))
    assert r.status_code == 200, r.text
    px = np.asarray(Image.open(io.BytesIO(r.content)))
    assert px.shape == (200, 300, 3) and (px[0, 0] >= 250).all()
    # An uploaded background image (multipart), cover-fitted behind the subject.
    backdrop = solid((40, 40), (0, 200, 0))
    r = asyncio.run(_post(app, url=URL + "?crop=true&canvas=1:1&fill=50",
                          files={"file": ("p.png", photo, "image/png"),
                                 "background_image": ("b.png", backdrop, "image/png")}))
    assert r.status_code == 200, r.text
    px = np.asarray(Image.open(io.BytesIO(r.content)))
    assert px.shape[0] == px.shape[1] and (px[0, 0] == (0, 200, 0, 255)).all()
    # Never a server path; a preset that does not exist says which do.
    r = asyncio.run(_post(app, url=URL + "?background_image=/etc/passwd", content=photo))
    assert r.status_code == 400 and "multipart field" in r.json()["error"]
    r = asyncio.run(_post(app, url=URL + "?preset=square", content=photo))
    assert r.status_code == 400 and "square-white" in r.json()["error"]
    r = asyncio.run(_post(app, url=URL + "?fill=85", content=photo))
    assert r.status_code == 400 and "needs a canvas" in r.json()["error"]
    r = asyncio.run(_post(app, files={"file": ("p.png", photo, "image/png")}, data={"background_image": "b.png"}))
    assert r.status_code == 400 and "must be a file" in r.json()["error"]
    r = asyncio.run(_post(app, files={"file": ("p.png", photo, "image/png"),
                                      "background_image": ("b.png", b"not an image", "image/png")}))
    assert r.status_code == 415 and "background" in r.json()["error"], r.text
