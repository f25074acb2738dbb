"""What every benchmark shares: the machine's description and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
PHOTOS = ROOT.parent / "shared" / "data" / "photos"


def machine() -> str:
    """CPU model, cores, memory and versions, plus the load average (timings on a busy box lie)."""
    cpu = "unknown CPU"
    try:
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, no GPU; onnxruntime {ort.__version__}, "
        f"Python {platform.python_version()}; 1-min load average {load:.1f} at the end of the run"
    )


def write_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replace only the ``<!-- name:start -->``..``<!-- name:end -->`` block, creating it if needed."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in old and end in old:
        rest = old[old.index(end) + len(end) :].lstrip("\n")
        new = old[: old.index(start)] + block + ("\n" + rest if rest else "")  # one blank line after it
    else:
        new = old.rstrip("\n") + "\n\n" + block
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")  # atomic: never a half-written RESULTS.md
    tmp.write_text(new)
    os.replace(tmp, path)
