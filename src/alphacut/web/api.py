"""The opt-in HTTP API: ``POST /api/v1/cutout`` (``alphacut serve --api``).

The default web app accepts no uploads; this API does, so it is off unless asked
for, and it keeps the promise that matters: images stay in this process's memory
and are never written to disk. The body is the image itself (any image content
type) or ``multipart/form-data`` with a ``file`` field (and, optionally, a
``start_mask`` field: a corrected mask to refine instead of the model's, see
:mod:`alphacut.startmask`; and a ``background_image`` field: an image behind the
subject on a listing canvas); options are query
parameters named and typed after :class:`~alphacut.options.Options` (the one
source of names and defaults), bar ``background_image`` (a server path: never),
plus ``preset`` (:mod:`alphacut.presets`; the other parameters override its values).
The response is the cutout or listing photo (PNG, WebP or JPEG) or the mask.

Order of checks, cheapest first, so that nothing is read that will be refused:
a cross-origin request (a web page driving the user's browser) is refused (403),
then a missing API key when one is set (401), bad query parameters (400), a text or
JSON Content-Type (415), a declared Content-Length over the byte cap (413), and a
full queue (503 with ``Retry-After``), all *before any of the body is read*. The
body then streams in under the byte cap (413 as soon as it passes it) and within
``body_timeout`` seconds (408). The megapixel cap is checked from the image header
(413). Whatever a bad input makes the decoder raise is that input's 4xx with a
JSON ``{"error": ...}`` that says what to do (415 for what is no image at all, the
photo, the start mask or the background image alike; 422 for a damaged one), and
says which of the images it was; only a fault of the server is a 500.

Inference runs in a worker thread, at most ``concurrency`` at a time (one on a
CPU), with ``queue`` more requests waiting. A request reserves its declared size in
a byte budget (``body_memory``, 2.5 x ``max_bytes`` by default) from before its body
is read until its answer is ready, and takes a place in the queue once its body is
in. So the request bodies in memory are at most ``body_memory`` (and never more than
``(concurrency + queue) x max_bytes`` once received), plus one being copied: 87.5 MiB
with the defaults. A slow or hostile client that holds an upload open holds bytes of
the budget, not a place in the queue: uploads at the cap fill it two at a time, and
everyone else still gets in.
"""

from __future__ import annotations

import logging
import math
import time
import typing
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import MISSING, Field
from typing import Any

import anyio
import anyio.to_thread
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..confidence import Confidence
from ..errors import AlphacutError, DecodeError, ImageTooLargeError, ModelError, ProviderError
from ..jobs import EXTENSIONS
from ..options import Options
from ..presets import PRESETS
from ..session import ModelSession
from .guards import api_key_refusal, cross_origin_refusal

__all__ = ["MEDIA_TYPES", "PREFIX", "api_routes", "default_api_routes", "openapi_schema", "options_from_query"]

PREFIX = "/api/v1"
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_QUEUE = 4
DEFAULT_BODY_TIMEOUT = 30.0  # seconds for the whole body: 25 MB at under 7 Mbit/s
_log = logging.getLogger("alphacut.api")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Problem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


# --- options ----------------------------------------------------------------------------------


def _option_types() -> dict[str, Any]:
    return typing.get_type_hints(Options)


def _describe(f: Field[Any], tp: Any) -> dict[str, Any]:
    """The JSON schema of one option, from its type, default and help."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    nullable = type(None) in args
    if nullable:
        (tp,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    schema: dict[str, Any]
    if origin is typing.Literal:
        schema = {"type": "string", "enum": list(args)}
    elif tp is bool:
        schema = {"type": "boolean"}
    elif tp is float:
        schema = {"type": "number"}
    elif tp is int:
        schema = {"type": "integer"}
    else:
        schema = {"type": "string"}
    if f.default is not MISSING:
        schema["default"] = f.default
    if nullable:
        schema["nullable"] = True
    return schema


def _parse(name: str, text: str, tp: Any) -> Any:
    args = typing.get_args(tp)
    if type(None) in args:
        if text == "":
            return None
        (tp,) = [a for a in args if a is not type(None)]
        args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Literal:
        if text not in args:
            raise _Problem(400, f"query parameter {name}={text!r}: use one of {', '.join(map(str, args))}")
        return text
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise _Problem(400, f"query parameter {name}={text!r}: use true or false")
    if tp in (int, float):
        try:
            value = tp(text)
        except ValueError:
            raise _Problem(400, f"query parameter {name}={text!r}: expected a number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise _Problem(400, f"query parameter {name}={text!r}: expected a finite number")
        return value
    return text


def options_from_query(query: Sequence[tuple[str, str]], *, max_megapixels: float | None = None) -> Options:
    """Build :class:`Options` from query parameters; unknown names and bad values are 400s.

    ``max_megapixels`` is the server's cap: a request may lower it, never raise it.
    """
    types = _option_types()
    fields = {f.name: f for f in _query_fields()}
    values: dict[str, Any] = {}
    preset: str | None = None
    for name, text in query:
        if name == "background_image":
            raise _Problem(400, "background_image is not a query parameter: send the image in the multipart field"
                                " `background_image` (with the photo in `file`)")
        if name == "preset":
            if preset is not None:
                raise _Problem(400, "query parameter 'preset' is given twice")
            preset = text
            continue
        if name not in fields:
            raise _Problem(400, f"unknown query parameter {name!r}: options are preset, {', '.join(fields)}")
        if name in values:
            raise _Problem(400, f"query parameter {name!r} is given twice")
        values[name] = _parse(name, text, types[name])
    if max_megapixels is not None:
        values["max_megapixels"] = min(values.get("max_megapixels", max_megapixels), max_megapixels)
    try:
        if preset is not None:
            return Options.from_preset(preset, **values)
        return Options(**values)
    except AlphacutError as exc:
        raise _Problem(400, str(exc)) from None


def _query_fields() -> list[Field[Any]]:
    """The options a query may set: all but ``background_image`` (a path on the server: never;
    the image comes as a multipart field)."""
    return [f for f in Options.fields() if f.name != "background_image"]


def openapi_schema(*, max_bytes: int, max_megapixels: float | None = None) -> dict[str, Any]:
    """The OpenAPI 3 description of the API, with parameters built from ``Options.fields()``."""
    types = _option_types()
    params: list[dict[str, Any]] = [{
        "name": "preset", "in": "query", "required": False,
        "description": "a listing preset (docs/listing.md); the other parameters override its values",
        "schema": {"type": "string", "enum": list(PRESETS)},
    }]
    for f in _query_fields():
        schema = _describe(f, types[f.name])
        if f.name == "max_megapixels" and max_megapixels is not None:
            schema["maximum"] = max_megapixels
            schema["default"] = min(float(schema.get("default", max_megapixels)), max_megapixels)
        params.append({"name": f.name, "in": "query", "required": False, "description": f.metadata.get("help", ""),
                       "schema": schema})
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "alphacut", "version": _version(),
                 "description": "Local background removal. Images are processed in memory and never stored."},
        "paths": {
            f"{PREFIX}/cutout": {
                "post": {
                    "operationId": "cutout",
                    "summary": "Cut the background out of one image",
                    "parameters": params,
                    "requestBody": {
                        "required": True,
                        "description": f"the image (at most {max_bytes} bytes, with its mask and background"
                                       " if any): raw, or multipart/form-data with a `file` field, an optional"
                                       " `start_mask` field (a corrected mask of any size with the photo's aspect"
                                       " ratio, 0 = background, 255 = subject: refined instead of the model's,"
                                       " which is not run) and an optional `background_image` field (an image"
                                       " behind the subject, cover-fitted to the listing canvas)",
                        "content": {
                            "image/*": image,
                            "application/octet-stream": image,
                            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                                               "properties": {"file": image["schema"],
                                                                              "start_mask": image["schema"],
                                                                              "background_image": image["schema"]}}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the cutout, or with mask=true the alpha matte",
                            "headers": {
                                "X-Alphacut-Confidence": {"schema": {"type": "number"}},
                                "X-Alphacut-Needs-Review": {"schema": {"type": "boolean"}},
                            },
                            "content": {t: image for t in MEDIA_TYPES.values()},
                        },
                        "400": {"description": "bad query parameter", **error},
                        "401": {"description": "the server needs an API key and the request lacks it", **error},
                        "403": {"description": "a cross-origin request (from a web page on another site)", **error},
                        "408": {"description": "the body did not arrive in time", **error},
                        "413": {"description": "over the byte or megapixel cap", **error},
                        "415": {"description": "not an image, or an unsupported format", **error},
                        "422": {"description": "a corrupt or truncated image", **error},
                        "500": {"description": "a fault of the server (never of the input)", **error},
                        "503": {"description": "busy: retry after Retry-After seconds", **error},
                    },
                }
            }
        },
        "components": {"schemas": {"Error": {"type": "object", "required": ["error"],
                                             "properties": {"error": {"type": "string"}}}}},
    }


def _version() -> str:
    from .. import __version__

    return __version__


# --- body -------------------------------------------------------------------------------------


def _too_big(max_bytes: int) -> str:
    return f"the upload is over the {max_bytes} byte cap ({max_bytes / 1e6:g} MB): send a smaller file"


def _check_declared_length(headers: Headers, max_bytes: int) -> None:
    """A declared Content-Length over the cap is refused before anything is read."""
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise _Problem(400, f"bad Content-Length header {declared!r}: send the body's size in bytes")
    if int(declared) > max_bytes:
        raise _Problem(413, _too_big(max_bytes))


async def _capped_stream(request: Request, max_bytes: int) -> AsyncGenerator[bytes, None]:
    """The body's chunks, refused (413) as soon as they pass ``max_bytes``, without reading the rest."""
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_bytes:
                raise _Problem(413, _too_big(max_bytes))
            yield chunk
    except ClientDisconnect:
        raise _Problem(400, "the client disconnected before the upload finished") from None


async def _read_body(request: Request, max_bytes: int) -> bytes:
    chunks = [chunk async for chunk in _capped_stream(request, max_bytes)]
    return b"".join(chunks)


async def _multipart_file(request: Request, max_bytes: int) -> tuple[bytes, bytes | None, bytes | None]:
    """The ``file``, ``start_mask`` and ``background_image`` fields of a multipart body, parsed as it
    streams in (never a second whole copy); all under the one byte cap."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    parser = MultiPartParser(request.headers, _capped_stream(request, max_bytes), max_files=3, max_fields=16,
                             max_part_size=64 * 1024)
    parser.spool_max_size = max_bytes + 1  # keep the file in memory: images never touch the disk
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise _Problem(400, f"bad multipart/form-data body: {exc}") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise _Problem(400, "multipart/form-data needs the image in a field named `file`")
        mask = form.get("start_mask")
        if isinstance(mask, str):
            raise _Problem(400, "the `start_mask` field must be a file (the mask image), not text")
        background = form.get("background_image")
        if isinstance(background, str):
            raise _Problem(400, "the `background_image` field must be a file (an image), not text or a path")
        return (await upload.read(), (await mask.read() if mask is not None else None),
                (await background.read() if background is not None else None))
    finally:
        await form.close()


# --- routes -----------------------------------------------------------------------------------


class _Gate:
    """At most ``concurrency`` requests run and ``queue`` wait with their bodies in; the bodies
    being received or waiting take at most ``body_memory`` bytes together; the rest are turned away.

    A request reserves its declared Content-Length (the byte cap when it declares none) before
    its body is read, and takes a place in the queue only once its body is in. So a client that
    sends slowly, or holds its upload open, holds bytes of the budget but no place: large held
    uploads fill the budget (two at the cap), and everyone else still gets in.
    """

    def __init__(self, queue: int, body_memory: int) -> None:
        self.queue = queue
        self.body_memory = body_memory
        self.concurrency = 1
        self.limiter: anyio.CapacityLimiter | None = None
        self.working = 0  # bodies in, waiting for or in the model
        self.reserved = 0
        self.seconds = 2.0  # running mean of one request's work, for Retry-After

    def full(self) -> bool:
        return self.working >= self.concurrency + self.queue

    def fits(self, size: int) -> bool:
        return self.reserved + size <= self.body_memory

    def busy(self, why: str) -> _Problem:
        wait = max(1, math.ceil(self.seconds * (self.working + 1) / self.concurrency))
        return _Problem(503, f"busy: {why}, retry later", {"Retry-After": str(wait)})


class _ServerFault(Exception):
    """Something that is not the input's fault failed while cutting it out (answered 500)."""


def api_routes(
    session_factory: Callable[[], ModelSession],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    queue: int = DEFAULT_QUEUE,
    concurrency: int | None = None,
    max_megapixels: float | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    api_key: str | None = None,
    body_memory: int | None = None,
) -> list[BaseRoute]:
    """The API's routes, to pass to ``create_app(extra_routes=...)``.

    ``session_factory`` makes the engine :class:`~alphacut.session.Session`; it is
    called once, on the first request, in a worker thread. ``concurrency`` (default:
    1 on a CPU, 2 on a GPU) requests run at once and ``queue`` more wait; the rest get
    503. ``max_megapixels`` caps what a request may ask for (default: the Options default).
    ``body_timeout`` is the time a body has to arrive in full (408 after it). With
    ``api_key`` every request must carry it (``Authorization: Bearer`` or ``X-API-Key``).
    ``body_memory`` caps the bytes of the bodies of admitted requests together (default:
    2.5 x ``max_bytes``: two uploads at the cap and room for smaller ones; at least ``max_bytes``).
    """
    if max_bytes < 1 or queue < 0 or (concurrency is not None and concurrency < 1) or not body_timeout > 0:
        raise ValueError(f"bad API limits: max_bytes={max_bytes}, queue={queue}, concurrency={concurrency},"
                         f" body_timeout={body_timeout}")
    mp_cap = max_megapixels if max_megapixels is not None else _field_default("max_megapixels")
    gate = _Gate(queue, max(max_bytes, body_memory if body_memory is not None else 5 * max_bytes // 2))
    session_box: list[ModelSession] = []
    session_lock = anyio.Lock()
    schema = openapi_schema(max_bytes=max_bytes, max_megapixels=mp_cap)

    async def get_session() -> ModelSession:
        async with session_lock:
            if not session_box:
                session = await anyio.to_thread.run_sync(session_factory)
                gate.concurrency = concurrency or (2 if session.on_gpu else 1)
                gate.limiter = anyio.CapacityLimiter(gate.concurrency)
                session_box.append(session)
            return session_box[0]

    def check_caller(request: Request) -> None:
        refusal = cross_origin_refusal(request.scope)
        if refusal is not None:
            raise _Problem(403, refusal)
        refusal = api_key_refusal(request.scope, api_key)
        if refusal is not None:
            raise _Problem(401, refusal, {"WWW-Authenticate": 'Bearer realm="alphacut"'})

    async def cutout(request: Request) -> Response:
        body = b""
        start_mask: bytes | None = None
        background: bytes | None = None
        try:
            check_caller(request)
            options = options_from_query(list(request.query_params.multi_items()), max_megapixels=mp_cap)
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype.startswith("text/") or ctype == "application/json":
                raise _Problem(415, f"Content-Type {ctype} is not an image: send the image bytes or"
                                    " multipart/form-data with a `file` field")
            _check_declared_length(request.headers, max_bytes)
            # The queue and the byte budget are checked before the body is read: a refused upload
            # costs no memory.
            declared = request.headers.get("content-length")
            size = int(declared) if declared is not None else max_bytes
            if gate.full():
                raise gate.busy("too many images in the queue")
            if not gate.fits(size):
                raise gate.busy("too many uploads arriving at once")
            gate.reserved += size
            try:
                try:
                    with anyio.fail_after(body_timeout):
                        if ctype == "multipart/form-data":
                            body, start_mask, background = await _multipart_file(request, max_bytes)
                        else:
                            # Any other type (curl's default form-urlencoded included) is the image
                            # itself: the decoder sniffs the content, as the CLI does.
                            body = await _read_body(request, max_bytes)
                except TimeoutError:
                    raise _Problem(408, f"the upload did not arrive within {body_timeout:g} s: send it again"
                                        " over a faster connection") from None
                if not body:
                    raise _Problem(422, "the body is empty: send the image bytes")
                if gate.full():  # others' bodies came in while this one did
                    raise gate.busy("too many images in the queue")
                gate.working += 1
                try:
                    session = await get_session()
                    assert gate.limiter is not None
                    async with gate.limiter:
                        started = time.perf_counter()
                        data, confidence = await anyio.to_thread.run_sync(_work, body, options, session, start_mask,
                                                                           background)
                        gate.seconds = 0.8 * gate.seconds + 0.2 * (time.perf_counter() - started)
                finally:
                    gate.working -= 1
            finally:
                gate.reserved -= size
        except _Problem as p:
            return _error(p.status, str(p), p.headers)
        except ImageTooLargeError as exc:
            return _error(413, str(exc))
        except DecodeError as exc:
            return _error(415 if isinstance(exc, _NotAnImage) or _not_an_image(body) else 422, str(exc))
        except (ModelError, ProviderError) as exc:
            return _error(503, f"the model is not available: {exc}", {"Retry-After": "60"})
        except AlphacutError as exc:
            return _error(422, str(exc))
        except Exception as exc:  # noqa: BLE001 - a fault of the server, not of the input: say so, log it
            _log.exception("internal error while answering %s", request.url.path)
            cause = exc.__cause__ if isinstance(exc, _ServerFault) and exc.__cause__ is not None else exc
            return _error(500, f"internal error ({type(cause).__name__}): the server log has the details;"
                               " please report it")
        kind = "mask" if options.mask else "cutout"
        return Response(data, media_type=MEDIA_TYPES[options.format], headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'inline; filename="{kind}.{EXTENSIONS[options.format]}"',
            "X-Alphacut-Confidence": f"{confidence.score:.4f}",
            "X-Alphacut-Needs-Review": "true" if confidence.needs_review else "false",
        })

    def openapi(request: Request) -> Response:
        try:
            check_caller(request)
        except _Problem as p:
            return _error(p.status, str(p), p.headers)
        return JSONResponse(schema)

    return [
        Route(f"{PREFIX}/cutout", cutout, methods=["POST"]),
        Route(f"{PREFIX}/openapi.json", openapi, methods=["GET", "HEAD"]),
    ]


def _field_default(name: str) -> Any:
    return next(f.default for f in Options.fields() if f.name == name)


def _not_an_image(body: bytes) -> bool:
    from ..imageio import sniff_format

    return sniff_format(body) is None


class _NotAnImage(DecodeError):
    """An uploaded part beside the photo (start mask, background image) is no image at all: 415."""


def _part(read: Any, data: bytes, options: Options) -> Any:
    """``read(data)`` for a part beside the photo; a part that is not an image is a 415, not a 422."""
    try:
        return read(data, max_megapixels=options.max_megapixels)
    except DecodeError as exc:
        if _not_an_image(data):
            raise _NotAnImage(str(exc)) from None
        raise


def _work(body: bytes, options: Options, session: ModelSession, start_mask: bytes | None = None,
          background: bytes | None = None) -> tuple[bytes, Confidence]:
    """Decode, cut out (from ``start_mask`` when given) and encode (over ``background``, an
    uploaded image, when given), in a worker thread."""
    from ..compose import read_background_image
    from ..imageio import decode
    from ..pipeline import cut, cut_from_mask
    from ..startmask import read_start_mask

    try:
        try:
            decoded = decode(body, max_megapixels=options.max_megapixels, color=options.color)
        except AlphacutError:
            raise
        except MemoryError:
            raise ImageTooLargeError(_OUT_OF_MEMORY) from None
        except Exception as exc:  # whatever a damaged file makes a decoder raise is the input's fault
            detail = " ".join(str(exc).split())[:120]
            raise DecodeError(f"the image is corrupt ({type(exc).__name__}{': ' + detail if detail else ''}):"
                              " re-export it from its source, or re-download it") from exc
        if start_mask is not None:
            if not start_mask:
                raise DecodeError("the start mask is empty (0 bytes): send the mask image in `start_mask`")
            mask = _part(read_start_mask, start_mask, options)
        backdrop = None
        if background is not None:
            if not background:
                raise DecodeError("the background image is empty (0 bytes): send the image in `background_image`")
            backdrop = _part(read_background_image, background, options)
        try:
            if start_mask is not None:
                result = cut_from_mask(decoded, mask, options=options, session=session)
            else:
                result = cut(decoded, options=options, session=session)
            return result.encode(options, background_image=backdrop), result.confidence
        except AlphacutError:
            raise
        except MemoryError:
            raise ImageTooLargeError(_OUT_OF_MEMORY) from None
        except Exception as exc:  # the pixels decoded: a failure now is the server's, not the input's
            raise _ServerFault(str(exc)) from exc
    finally:
        _release_memory()


_OUT_OF_MEMORY = ("the image needs more memory than this server has free: send a smaller image, or lower"
                  " max_megapixels to have such images refused at once")


def _release_memory() -> None:
    """Give freed heap back to the OS after each image (glibc keeps it otherwise, and a
    long-running server's RSS creeps up with every full-resolution array)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_MALLOC_TRIM = _malloc_trim()


def default_api_routes(model: str, *, max_upload_mb: float, queue: int = DEFAULT_QUEUE,
                       body_timeout: float = DEFAULT_BODY_TIMEOUT, api_key: str | None = None) -> list[BaseRoute]:
    """The routes ``alphacut serve --api`` adds: a session over ``model`` on this machine's best device.

    On a CPU the model gets every core but one: the event loop keeps a core to answer
    (and turn away) requests, and onnxruntime's threads are not starved mid-operator,
    which on an oversubscribed CPU costs far more than the core left out.
    """

    def factory() -> ModelSession:
        import os

        from ..session import Session

        cores = os.cpu_count() or 1
        session, _ = Session.for_work(model, threads=max(1, cores - 1), batch_size=1)
        return session

    return api_routes(factory, max_bytes=int(max_upload_mb * 1024 * 1024), queue=queue, body_timeout=body_timeout,
                      api_key=api_key)
