"""The opt-in HTTP API: ``POST /api/v1/cutout`` (``alphacut serve --api``).

The default web app accepts no uploads; this API does, so it is off unless asked
for, and it keeps the promise that matters: images stay in this process's memory
and are never written to disk. The body is the image itself (any image content
type) or ``multipart/form-data`` with a ``file`` field; options are query
parameters named and typed after :class:`~alphacut.options.Options` (the one
source of names and defaults). The response is the cutout (PNG, WebP or JPEG) or
the mask.

Limits: the byte cap is enforced while the body streams in (413, before it is all
read); the megapixel cap from the image header (413); what is not a usable image
gets 415 or 422 with a JSON ``{"error": ...}`` body. Inference runs in a worker
thread, at most ``concurrency`` at a time (one on a CPU), with ``queue`` more
requests waiting; beyond that the answer is 503 with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
import typing
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import MISSING, Field
from typing import Any

import anyio
import anyio.to_thread
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import AlphacutError, DecodeError, ImageTooLargeError, ModelError, ProviderError
from ..options import Options

__all__ = ["api_routes", "default_api_routes", "openapi_schema", "options_from_query", "MEDIA_TYPES", "PREFIX"]

PREFIX = "/api/v1"
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_QUEUE = 4
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
    fields = {f.name: f for f in Options.fields()}
    values: dict[str, Any] = {}
    for name, text in query:
        if name not in fields:
            raise _Problem(400, f"unknown query parameter {name!r}: options are {', '.join(fields)}")
        if name in values:
            raise _Problem(400, f"query parameter {name!r} is given twice")
        values[name] = _parse(name, text, types[name])
    if max_megapixels is not None:
        values["max_megapixels"] = min(values.get("max_megapixels", max_megapixels), max_megapixels)
    try:
        return Options(**values)
    except AlphacutError as exc:
        raise _Problem(400, str(exc)) from None


def openapi_schema(*, max_bytes: int, max_megapixels: float | None = None) -> dict[str, Any]:
    """The OpenAPI 3 description of the API, with parameters built from ``Options.fields()``."""
    types = _option_types()
    params = []
    for f in Options.fields():
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
                        "description": f"the image (at most {max_bytes} bytes): raw, or multipart/form-data"
                                       " with a `file` field",
                        "content": {
                            "image/*": image,
                            "application/octet-stream": image,
                            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                                               "properties": {"file": image["schema"]}}},
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
                        "413": {"description": "over the byte or megapixel cap", **error},
                        "415": {"description": "not an image, or an unsupported format", **error},
                        "422": {"description": "a corrupt or truncated image", **error},
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


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused (413) as soon as it passes ``max_bytes``, without reading the rest."""
    declared = request.headers.get("content-length")
    too_big = f"the upload is over the {max_bytes} byte cap ({max_bytes / 1e6:g} MB): send a smaller file"
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise _Problem(413, too_big)
        except ValueError:
            raise _Problem(400, "bad Content-Length header") from None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise _Problem(413, too_big)
    except ClientDisconnect:
        raise _Problem(400, "the client disconnected before the upload finished") from None
    return bytes(body)


async def _multipart_file(headers: Headers, body: bytes) -> bytes:
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def once() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(headers, once(), max_files=1, max_fields=16, max_part_size=64 * 1024)
    parser.spool_max_size = len(body) + 1  # keep the file in memory: images never touch the disk
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise _Problem(400, f"bad multipart/form-data body: {exc}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise _Problem(400, "multipart/form-data needs the image in a field named `file`")
    data = await upload.read()
    await form.close()
    return data


# --- routes -----------------------------------------------------------------------------------


class _Gate:
    """At most ``concurrency`` requests run and ``queue`` wait; the rest are turned away."""

    def __init__(self, queue: int) -> None:
        self.queue = queue
        self.concurrency = 1
        self.limiter: anyio.CapacityLimiter | None = None
        self.admitted = 0
        self.seconds = 2.0  # running mean of one request's work, for Retry-After

    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.seconds * (self.admitted + 1) / self.concurrency)))


def api_routes(
    session_factory: Callable[[], Any],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    queue: int = DEFAULT_QUEUE,
    concurrency: int | None = None,
    max_megapixels: float | None = None,
) -> list[BaseRoute]:
    """The API's routes, to pass to ``create_app(extra_routes=...)``.

    ``session_factory`` makes the engine :class:`~alphacut.session.Session`; it is
    called once, on the first request, in a worker thread. ``concurrency`` (default:
    1 on a CPU, 2 on a GPU) requests run at once and ``queue`` more wait; the rest get
    503. ``max_megapixels`` caps what a request may ask for (default: the Options default).
    """
    if max_bytes < 1 or queue < 0 or (concurrency is not None and concurrency < 1):
        raise ValueError(f"bad API limits: max_bytes={max_bytes}, queue={queue}, concurrency={concurrency}")
    mp_cap = max_megapixels if max_megapixels is not None else _field_default("max_megapixels")
    gate = _Gate(queue)
    session_box: list[Any] = []
    session_lock = anyio.Lock()
    schema = openapi_schema(max_bytes=max_bytes, max_megapixels=mp_cap)

    async def get_session() -> Any:
        async with session_lock:
            if not session_box:
                session = await anyio.to_thread.run_sync(session_factory)
                gate.concurrency = concurrency or (2 if getattr(session, "on_gpu", False) else 1)
                gate.limiter = anyio.CapacityLimiter(gate.concurrency)
                session_box.append(session)
            return session_box[0]

    async def cutout(request: Request) -> Response:
        try:
            options = options_from_query(list(request.query_params.multi_items()), max_megapixels=mp_cap)
            body = await _read_body(request, max_bytes)
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype == "multipart/form-data":
                body = await _multipart_file(request.headers, body)
            elif ctype.startswith("text/") or ctype in ("application/json", "application/x-www-form-urlencoded"):
                raise _Problem(415, f"Content-Type {ctype} is not an image: send the image bytes or"
                                    " multipart/form-data with a `file` field")
            if not body:
                raise _Problem(422, "the body is empty: send the image bytes")
            if gate.admitted >= gate.concurrency + gate.queue:
                raise _Problem(503, "busy: too many images in the queue, retry later",
                               {"Retry-After": gate.retry_after()})
            gate.admitted += 1
            try:
                session = await get_session()
                assert gate.limiter is not None
                async with gate.limiter:
                    started = time.perf_counter()
                    data, confidence = await anyio.to_thread.run_sync(_work, body, options, session)
                    gate.seconds = 0.8 * gate.seconds + 0.2 * (time.perf_counter() - started)
            finally:
                gate.admitted -= 1
        except _Problem as p:
            return _error(p.status, str(p), p.headers)
        except ImageTooLargeError as exc:
            return _error(413, str(exc))
        except DecodeError as exc:
            return _error(415 if _not_an_image(body) else 422, str(exc))
        except (ModelError, ProviderError) as exc:
            return _error(503, f"the model is not available: {exc}", {"Retry-After": "60"})
        except AlphacutError as exc:
            return _error(422, str(exc))
        kind = "mask" if options.mask else "cutout"
        return Response(data, media_type=MEDIA_TYPES[options.format], headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'inline; filename="{kind}.{"jpg" if options.format == "jpeg" else options.format}"',
            "X-Alphacut-Confidence": f"{confidence.score:.4f}",
            "X-Alphacut-Needs-Review": "true" if confidence.needs_review else "false",
        })

    def openapi(request: Request) -> Response:
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


def _work(body: bytes, options: Options, session: Any) -> tuple[bytes, Any]:
    """Decode, cut out and encode, in a worker thread."""
    from ..imageio import decode
    from ..pipeline import cut

    try:
        decoded = decode(body, max_megapixels=options.max_megapixels, color=options.color)
        result = cut(decoded, options=options, session=session)
        return result.encode(options), result.confidence
    finally:
        _release_memory()


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


def default_api_routes(model: str, *, max_upload_mb: float, queue: int = DEFAULT_QUEUE) -> list[BaseRoute]:
    """The routes ``alphacut serve --api`` adds: a session over ``model`` on this machine's best device.

    On a CPU the model gets every core but one: the event loop keeps a core to answer
    (and turn away) requests, and onnxruntime's threads are not starved mid-operator,
    which on an oversubscribed CPU costs far more than the core left out.
    """

    def factory() -> Any:
        import os

        from ..batch import open_session

        cores = os.cpu_count() or 1
        session, _ = open_session(model, threads=max(1, cores - 1), batch_size=1)
        return session

    return api_routes(factory, max_bytes=int(max_upload_mb * 1024 * 1024), queue=queue)
