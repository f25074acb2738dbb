"""Load test of the HTTP API, on the loopback only, bounded in time.

Starts `alphacut serve --api` itself on a free 127.0.0.1 port, then runs 32 concurrent
clients (httpx, async) for 60 s, each posting a small real photo again and again (after
a 503 a client waits as Retry-After says, at most 5 s, and tries again). Counts statuses (any 5xx other than 503
is a failure), latency percentiles, and the server process's RSS after the first 10 s and
at the end (they must agree within 10 %). Writes the ``load`` section of RESULTS.md.

    PYTHONPATH=src ALPHACUT_HOME=... python benchmarks/loadtest.py [--clients 32] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_section  # noqa: E402

PHOTO = ROOT / "tests" / "data" / "photos" / "girl-1.jpg"
MAX_BACKOFF = 5.0  # seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


async def client(base: str, body: bytes, stop_at: float, statuses: Counter[int], ok: list[float],
                 busy: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as c:
        while time.monotonic() < stop_at:
            t0 = time.monotonic()
            try:
                r = await c.post("/api/v1/cutout", content=body, headers={"Content-Type": "image/jpeg"})
            except httpx.HTTPError as exc:
                statuses[-1] += 1
                print(f"transport error: {exc!r}", file=sys.stderr)
                await asyncio.sleep(0.2)
                continue
            dt = time.monotonic() - t0
            statuses[r.status_code] += 1
            if r.status_code == 200:
                ok.append(dt)
            elif r.status_code == 503:
                busy.append(dt)
                # A polite client: honour Retry-After (capped), with jitter so retries spread out.
                wait = min(float(r.headers.get("retry-after", "1")), MAX_BACKOFF)
                await asyncio.sleep(wait * random.uniform(0.5, 1.0))


async def run(base: str, pid: int, clients: int, seconds: float) -> dict[str, object]:
    body = PHOTO.read_bytes()
    statuses: Counter[int] = Counter()
    ok: list[float] = []
    busy: list[float] = []
    started = time.monotonic()
    stop_at = started + seconds
    tasks = [asyncio.create_task(client(base, body, stop_at, statuses, ok, busy)) for _ in range(clients)]
    await asyncio.sleep(min(10.0, seconds / 2))
    rss_early = rss_mib(pid)
    await asyncio.gather(*tasks)
    return {"statuses": statuses, "ok": ok, "busy": busy, "rss_early": rss_early, "rss_end": rss_mib(pid),
            "elapsed": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen(
        [sys.executable, "-m", "alphacut", "serve", "--api", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {server.stderr.read() if server.stderr else ''}")
            try:
                if httpx.get(f"{base}/api/v1/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start within 120 s")
            time.sleep(0.3)
        rss_idle = rss_mib(server.pid)
        # One request first: loads the model and sizes onnxruntime's memory arena, so the
        # RSS comparison below is about steady state, not start-up.
        warm = httpx.post(f"{base}/api/v1/cutout", content=PHOTO.read_bytes(), timeout=300)
        if warm.status_code != 200:
            raise SystemExit(f"warm-up request failed: {warm.status_code} {warm.text[:200]}")
        rss_warm = rss_mib(server.pid)
        result = asyncio.run(run(base, server.pid, args.clients, args.seconds))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    statuses: Counter[int] = result["statuses"]  # type: ignore[assignment]
    ok: list[float] = result["ok"]  # type: ignore[assignment]
    busy: list[float] = result["busy"]  # type: ignore[assignment]
    bad = {s: n for s, n in statuses.items() if s >= 500 and s != 503 or s == -1}
    rss_early, rss_end = float(result["rss_early"]), float(result["rss_end"])  # type: ignore[arg-type]
    drift = (rss_end - rss_early) / rss_early
    passed = not bad and abs(drift) <= 0.10 and statuses.get(200, 0) > 0
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]
    table = "\n".join(f"| {s if s != -1 else 'transport error'} | {n} |" for s, n in sorted(statuses.items()))
    text = f"""## HTTP API load test (`benchmarks/loadtest.py`)

`alphacut serve --api` on 127.0.0.1, {args.clients} concurrent clients for {args.seconds:.0f} s, each posting
`tests/data/photos/girl-1.jpg` (600x399 JPEG, {PHOTO.stat().st_size // 1024} KiB) in a loop; after a 503 a client
waits what its Retry-After says (at most {MAX_BACKOFF:g} s, times 0.5-1 for jitter). One warm-up request precedes the timed run. The clients run on the same 2 cores as the
server, so the load generator itself takes CPU from the model. Server limits: default (one inference at a time on a CPU, queue of 4).
Machine: {machine()}.

| status | count |
|---|---|
{table}

- Completed cutouts: {len(ok)} in {elapsed:.0f} s = {len(ok) / elapsed:.2f} images/s.
- Latency of 200s: p50 {percentile(ok, 50):.2f} s, p90 {percentile(ok, 90):.2f} s, p99 {percentile(ok, 99):.2f} s,
  max {max(ok, default=float('nan')):.2f} s. Latency of 503s: p50 {percentile(busy, 50) * 1000:.0f} ms,
  p99 {percentile(busy, 99) * 1000:.0f} ms (turned away fast, without queueing).
- Server RSS: {rss_idle:.0f} MiB idle, {rss_warm:.0f} MiB after one warm-up request, {rss_early:.0f} MiB
  after the first 10 s of load, {rss_end:.0f} MiB at the end
  ({drift * 100:+.1f} %, limit ±10 %).
- 5xx other than 503: {sum(bad.values())}. Verdict: **{'PASS' if passed else 'FAIL'}**.
"""
    print(text)
    if not args.no_write:
        write_section("load", text)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
