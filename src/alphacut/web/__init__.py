"""The local web app: a page that cuts images out in the browser tab.

``create_app`` builds the ASGI app, ``serve`` runs it; ``alphacut runtime pull``
fetches the in-browser runtime (onnxruntime-web) into the cache.
"""

from __future__ import annotations

from .app import create_app, serve

__all__ = ["create_app", "serve"]
