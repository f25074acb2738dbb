"""Headless Debian Chromium for the web tests and the browser benchmark: one launch recipe.

Playwright drives the system browser (never a downloaded one): a persistent context
with a fresh profile in ``folder`` and a scratch HOME there too, because Chromium's
crash reporter writes under ``$HOME/.config`` whatever the profile folder is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("ALPHACUT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(driver: Any, folder: Path, extra_args: list[str] | tuple[str, ...] = (), **options: Any) -> Any:
    """A persistent Chromium context; its profile and scratch HOME live in ``folder``."""
    scratch = folder / "home"
    scratch.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(scratch),
        "XDG_CONFIG_HOME": str(scratch / "config"),
        "XDG_CACHE_HOME": str(scratch / "cache"),
    }
    return driver.chromium.launch_persistent_context(
        str(folder / "profile"),
        executable_path=CHROMIUM,
        headless=False,
        args=[*CHROMIUM_ARGS, *extra_args],
        env=env,
        accept_downloads=True,
        **options,
    )
