"""``python -m alphacut.web pull-runtime``: fetch the in-browser runtime into the cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AlphacutError
from .runtime import ORT_VERSION, pull_runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alphacut.web")
    sub = parser.add_subparsers(dest="command", required=True)
    pull = sub.add_parser("pull-runtime", help=f"fetch onnxruntime-web {ORT_VERSION} with npm")
    pull.add_argument("--tarball", type=Path, help="use this onnxruntime-web .tgz instead of npm pack")
    pull.add_argument("--force", action="store_true", help="fetch again even if cached")
    args = parser.parse_args(argv)
    try:
        path = pull_runtime(tarball=args.tarball, force=args.force)
    except AlphacutError as exc:
        parser.exit(1, f"error: {exc}\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
