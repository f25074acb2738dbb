"""The security headers every answer of the server carries: the app's own responses
(:mod:`alphacut.web.app`) and the few that the HTTP protocol layer writes itself
(:mod:`alphacut.web.server`: a malformed request's 400, the overload 503)."""

from __future__ import annotations

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "raw_headers"]

# As strict as onnxruntime-web allows: it compiles WebAssembly ('wasm-unsafe-eval')
# and starts its threads from its own same-origin module; nothing else is needed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self'",
        "connect-src 'self'",
        "img-src 'self' blob: data:",
        "style-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS: dict[str, str] = {
    # Cross-origin isolation: lets onnxruntime-web use threads (SharedArrayBuffer).
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def raw_headers() -> list[tuple[bytes, bytes]]:
    """:data:`SECURITY_HEADERS` as ASGI/h11 header pairs (lower-case names)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
