"""The page's deflate joiner (static/deflate.js), run in Node: zlib streams of the parts
of some data, made by the same CompressionStream as the browser's, joined into one
stream that zlib inflates back to the whole data (its Adler-32 checked)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DEFLATE_JS = Path(__file__).parents[2] / "src" / "alphacut" / "web" / "static" / "deflate.js"

SCRIPT = """
import { joinZlib } from %(module)s;
import zlib from "node:zlib";

async function deflate(data) {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const kinds = [
  (i) => (random() * 256) | 0, // incompressible: stored blocks
  () => 0, // one long run: tiny fixed blocks
  (i) => ((i >> 5) & 7) * 37, // repeats: dynamic blocks with matches
  (i) => (Math.sin(i / 50) * 60 + 128 + random() * 8) | 0, // photo-like
];
let joined = 0;
for (let t = 0; t < 48; t++) {
  const n = 1 + Math.floor(random() * (t %% 8 === 0 ? 3e6 : 2e5));
  const data = new Uint8Array(n);
  const kind = kinds[t %% kinds.length];
  for (let i = 0; i < n; i++) data[i] = kind(i);
  const cuts = [0, n];
  for (let k = Math.floor(random() * 4); k > 0; k--) cuts.push(Math.floor(random() * n));
  cuts.sort((a, b) => a - b);
  const pieces = [];
  for (let j = 0; j + 1 < cuts.length; j++) {
    const part = data.subarray(cuts[j], cuts[j + 1]);
    pieces.push({ zlib: await deflate(part), length: part.length });
  }
  const chunks = joinZlib(pieces);
  if (!chunks) throw new Error(`case ${t}: the pieces did not join`);
  const back = zlib.inflateSync(Buffer.concat(chunks.map((c) => Buffer.from(c))));
  if (Buffer.compare(back, Buffer.from(data)) !== 0) throw new Error(`case ${t}: joined stream differs`);
  joined += pieces.length > 1;
}
if (joined < 20) throw new Error(`only ${joined} cases had several pieces`);
// Not deflate at all: refused (null), never a broken stream.
const junk = new Uint8Array([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
if (joinZlib([{ zlib: junk, length: 4 }, { zlib: await deflate(new Uint8Array(9)), length: 9 }]) !== null)
  throw new Error("junk joined");
console.log("ok", joined);
"""


def test_joined_deflate_parts_inflate_to_the_whole(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (the set-up fetches the page's runtime with npm)"
    script = tmp_path / "join.mjs"
    script.write_text(SCRIPT % {"module": repr(DEFLATE_JS.as_uri())})
    done = subprocess.run([node, str(script)], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")
