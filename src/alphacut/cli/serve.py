"""``alphacut serve``: the local web app (and, with --api, the HTTP API)."""

from __future__ import annotations

import click

from ..errors import AlphacutError
from ..options import DEFAULT_MODEL
from .common import fail

__all__ = ["serve"]



@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (keep it local)")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--open", "open_browser", is_flag=True, help="open the page in the default browser")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--api", is_flag=True, help="also serve POST /api/v1/cutout: accepts uploads (kept in memory, never stored)")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=25.0, show_default=True,
              help="largest upload the API accepts")
@click.option("--api-key", envvar="ALPHACUT_API_KEY", metavar="KEY",
              help="API callers must send `Authorization: Bearer KEY` or `X-API-Key: KEY`; required with --api"
                   " on a non-loopback --host (also read from ALPHACUT_API_KEY, which keeps it out of `ps`)")
@click.option("--body-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="time an API upload has to arrive in full (raise it for slow links)")
@click.option("--max-connections", type=click.IntRange(min=1), default=None, metavar="N",
              help="open connections at most; idle ones are closed first  [default: min(100, half of ulimit -n)]")
def serve(host: str, port: int, open_browser: bool, model: str, api: bool, max_upload_mb: float,
          api_key: str | None, body_timeout: float, max_connections: int | None) -> None:
    """Start the local web app: the model runs in your browser tab, no image is uploaded."""
    from ..web.app import serve as run_server
    from ..web.guards import is_loopback
    from ..web.server import ServerLimits

    if api_key is not None and not api:
        if click.get_current_context().get_parameter_source("api_key") == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--api-key protects the API: add --api (the page alone accepts no uploads)")
        api_key = None  # ALPHACUT_API_KEY set in the environment, no API: nothing to protect
    if api_key is not None:
        if len(api_key) < 16 or not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            raise click.UsageError("--api-key: use at least 16 printable ASCII characters without spaces, for"
                                   " example: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    elif api and not is_loopback(host):
        raise click.UsageError(f"--api on {host} lets other machines send images: set an API key with --api-key"
                               " KEY (or ALPHACUT_API_KEY=KEY), or bind --host 127.0.0.1")
    try:
        run_server(host=host, port=port, open_browser=open_browser, model=model, api=api, max_upload_mb=max_upload_mb,
                   api_key=api_key, body_timeout=body_timeout,
                   limits=ServerLimits(max_connections=max_connections or 0))
    except AlphacutError as exc:
        raise fail(exc) from None
