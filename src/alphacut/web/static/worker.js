// alphacut inference worker: runs the pre-processing graph, the segmentation model
// and the post-processing graph with onnxruntime-web, then encodes the export.
// Same graphs as the Python engine, so the browser and Python give the same cutout.
//
// Messages in:  {type: "init", config, backend: "auto" | "webgpu" | "wasm"}
//               {type: "cut", id, bitmap}            (ImageBitmap, transferred)
//               {type: "export", id, resultId, format}  ("png" | "webp")
// Messages out: {type: "progress", id?, stage, done?, total?}
//               {type: "ready", backend, detail, threads, ms}
//               {type: "result", id, bitmap, width, height, ms}
//               {type: "exported", id, blob, ms}
//               {type: "error", id?, message, fallback}

let ort = null;
let sessions = null;
let backend = "wasm";
let config = null;
let current = null; // {id, rgba, width, height}

const post = (message, transfer = []) => self.postMessage(message, transfer);
const now = () => performance.now();

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === "init") await init(msg);
    else if (msg.type === "cut") await cut(msg);
    else if (msg.type === "export") await exportImage(msg);
  } catch (error) {
    const message = describe(error);
    // A WebGPU failure is worth retrying on the CPU; the page starts a WASM worker.
    post({ type: "error", id: msg.id, message, fallback: backend === "webgpu" });
  }
};

function describe(error) {
  if (typeof error === "number") {
    // onnxruntime-web reports some WASM aborts as a bare pointer.
    return "the model ran out of memory in this tab (try a smaller image)";
  }
  const text = String(error?.message ?? error);
  if (/out of memory|Array buffer allocation failed|Aborted\(\)|memory access out of bounds/i.test(text)) {
    return `the browser ran out of memory for this image (${text}); try a smaller image`;
  }
  return text;
}

async function chooseBackend(wanted) {
  const webgpu = config.model.webgpu || {};
  if (wanted === "wasm") return { backend: "wasm", detail: "CPU (WebAssembly)" };
  const noGpu = (why) => {
    if (wanted === "webgpu") throw new Error(`WebGPU is not available: ${why}`);
    return { backend: "wasm", detail: "CPU (WebAssembly)", why };
  };
  if (!webgpu.f16 && !webgpu.f32) return noGpu(`the ${config.model.name} model has no WebGPU variant`);
  if (!self.navigator.gpu) return noGpu("this browser has no WebGPU");
  let adapter = null;
  try {
    adapter = await self.navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (error) {
    return noGpu(String(error?.message ?? error));
  }
  if (!adapter) return noGpu("no WebGPU adapter");
  const f16 = adapter.features.has("shader-f16") && webgpu.f16;
  const url = f16 ? webgpu.f16 : webgpu.f32;
  if (!url) return noGpu("no fp32 variant of the model for an adapter without shader-f16");
  const info = adapter.info || {};
  const name = [info.vendor, info.architecture || info.description].filter(Boolean).join(" ");
  return { backend: "webgpu", modelUrl: url, detail: `WebGPU${name ? ` (${name})` : ""}, ${f16 ? "fp16" : "fp32"}` };
}

async function fetchBytes(url, stage) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get("Content-Length")) || 0;
  if (!stage || !total || !response.body) return new Uint8Array(await response.arrayBuffer());
  let out = new Uint8Array(total);
  let done = 0;
  let last = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done: end, value } = await reader.read();
    if (end) break;
    if (done + value.length > out.length) {
      const bigger = new Uint8Array(Math.max(out.length * 2, done + value.length));
      bigger.set(out.subarray(0, done));
      out = bigger;
    }
    out.set(value, done);
    done += value.length;
    if (now() - last > 100) {
      last = now();
      post({ type: "progress", stage, done, total });
    }
  }
  return done === out.length ? out : out.slice(0, done);
}

async function init(msg) {
  config = msg.config;
  const t0 = now();
  post({ type: "progress", stage: "Loading the runtime" });
  const choice = await chooseBackend(msg.backend || "auto");
  backend = choice.backend;
  const rt = config.runtime[backend];
  ort = await import(rt.bundle);
  ort.env.logLevel = "error";
  ort.env.wasm.wasmPaths = { mjs: rt.mjs, wasm: rt.wasm };
  ort.env.wasm.proxy = false;
  // Threads need cross-origin isolation (SharedArrayBuffer); the server sends the headers.
  const threads = self.crossOriginIsolated ? Math.max(1, self.navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = threads;

  const modelUrl = choice.modelUrl || config.model.wasm;
  const mb = (config.model.size / 1e6).toFixed(0);
  const [pre, postGraph, model] = await Promise.all([
    fetchBytes(config.graphs.preprocess),
    fetchBytes(config.graphs.postprocess),
    fetchBytes(modelUrl, `Loading the ${config.model.name} model (${mb} MB, once)`),
  ]);
  post({ type: "progress", stage: "Preparing the model" });
  // logSeverityLevel 3: errors only (warnings would land in the console as errors).
  const cpu = { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3 };
  const pre_ = await ort.InferenceSession.create(pre, cpu);
  const post_ = await ort.InferenceSession.create(postGraph, cpu);
  const model_ = await ort.InferenceSession.create(model, {
    executionProviders: [backend === "webgpu" ? "webgpu" : "wasm"],
    logSeverityLevel: 3,
    graphOptimizationLevel: "all",
  });
  sessions = { pre: pre_, post: post_, model: model_ };
  const detail = backend === "wasm" ? `CPU (WebAssembly, ${threads} thread${threads > 1 ? "s" : ""})` : choice.detail;
  post({ type: "ready", backend, detail, why: choice.why || null, threads, ms: now() - t0 });
}

async function cut(msg) {
  if (!sessions) throw new Error("the model is not loaded yet");
  const { id, bitmap } = msg;
  const width = bitmap.width;
  const height = bitmap.height;
  const n = width * height;
  const timings = {};
  let t = now();

  post({ type: "progress", id, stage: "Reading the image" });
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const pixels = new Uint8Array(ctx.getImageData(0, 0, width, height).data.buffer);
  canvas.width = canvas.height = 1; // release the canvas memory early

  // Like the Python engine: transparent input pixels are shown to the model over
  // white, and transparency the input had stays in the output.
  let inputAlpha = null;
  for (let i = 3; i < pixels.length; i += 4) {
    if (pixels[i] !== 255) {
      inputAlpha = new Uint8Array(n);
      break;
    }
  }
  if (inputAlpha) {
    for (let i = 0; i < n; i++) {
      const a = pixels[4 * i + 3];
      inputAlpha[i] = a;
      if (a !== 255) {
        const k = a / 255;
        for (let c = 0; c < 3; c++) {
          pixels[4 * i + c] = Math.round(pixels[4 * i + c] * k + 255 * (1 - k));
        }
      }
    }
  }

  timings.read = now() - t;
  post({ type: "progress", id, stage: "Finding the subject" });
  const image = new ort.Tensor("uint8", pixels, [1, height, width, 4]);
  const { input } = await sessions.pre.run({ image }, ["input"]);
  timings.preprocess = now() - t - timings.read;
  const inputName = sessions.model.inputNames[0];
  const outputName = sessions.model.outputNames.includes("output") ? "output" : sessions.model.outputNames[0];
  const outputs = await sessions.model.run({ [inputName]: input }, [outputName]);
  const mask = outputs[outputName];
  input.dispose?.();
  timings.model = now() - t - timings.read - timings.preprocess;
  if (backend === "webgpu") {
    // Some WebGPU kernels fail silently with an all-zero result: treat it as a failure.
    const m = mask.data;
    let any = false;
    for (let i = 0; i < m.length; i += 7) if (m[i] !== 0) { any = true; break; }
    if (!any) throw new Error("WebGPU returned an empty mask");
  }
  timings.inference = now() - t;
  t = now();

  post({ type: "progress", id, stage: "Refining edges and colours" });
  const result = await sessions.post.run({ image, mask }, ["alpha", "rgba"]);
  mask.dispose?.();
  // The graph returns the cutout as uint8 RGBA, straight (what ImageData wants).
  const out = result.rgba.data;
  const rgba = new Uint8ClampedArray(out.buffer, out.byteOffset, n * 4);
  if (inputAlpha) {
    // Uint8ClampedArray rounds half to even and clamps: the same as numpy's rint + clip.
    const alpha = result.alpha.data;
    for (let i = 0; i < n; i++) rgba[4 * i + 3] = alpha[i] * inputAlpha[i];
  }
  result.alpha.dispose?.();
  timings.refine = now() - t;

  current = { id, rgba, width, height };
  const shown = await createImageBitmap(new ImageData(rgba, width, height));
  post({ type: "result", id, bitmap: shown, width, height, timings }, [shown]);
}

async function exportImage(msg) {
  if (!current || current.id !== msg.resultId) throw new Error("no cutout to export");
  const t = now();
  post({ type: "progress", id: msg.id, stage: `Encoding ${msg.format.toUpperCase()}` });
  const { rgba, width, height } = current;
  let blob;
  if (msg.format === "png") {
    blob = await encodePNG(rgba, width, height);
  } else if (msg.format === "webp") {
    if (width > 16383 || height > 16383) throw new Error("WebP cannot hold images wider or taller than 16383 pixels: use PNG");
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
    // quality 1 selects the browser's lossless WebP encoder.
    blob = await canvas.convertToBlob({ type: "image/webp", quality: 1 });
    canvas.width = canvas.height = 1;
    if (blob.type !== "image/webp") throw new Error("this browser cannot encode WebP: use PNG");
  } else {
    throw new Error(`unknown format ${msg.format}`);
  }
  post({ type: "exported", id: msg.id, blob, format: msg.format, ms: now() - t });
}

// --- PNG encoder -----------------------------------------------------------
// The browser's own encoders go through a premultiplied canvas, which rounds the
// colours of nearly transparent pixels; this one writes the straight RGBA exactly.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(chunks) {
  let c = 0xffffffff;
  for (const bytes of chunks) {
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const head = new Uint8Array(8);
  const view = new DataView(head.buffer);
  view.setUint32(0, data.length);
  const typeBytes = new TextEncoder().encode(type);
  head.set(typeBytes, 4);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc32([typeBytes, data]));
  return [head, data, tail];
}

async function encodePNG(rgba, width, height) {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, adaptive filtering, no interlace

  // Zlib stream of filtered rows ("Sub" filter), fed in bands to bound memory.
  const stream = new CompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const compressed = [];
  const reading = (async () => {
    const reader = stream.readable.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      compressed.push(value);
    }
  })();
  const stride = width * 4;
  const bandRows = Math.max(1, Math.floor((4 << 20) / (stride + 1)));
  for (let y0 = 0; y0 < height; y0 += bandRows) {
    const rows = Math.min(bandRows, height - y0);
    const band = new Uint8Array(rows * (stride + 1));
    for (let r = 0; r < rows; r++) {
      const src = (y0 + r) * stride;
      const dst = r * (stride + 1);
      band[dst] = 1;
      for (let i = 0; i < 4 && i < stride; i++) band[dst + 1 + i] = rgba[src + i];
      for (let i = 4; i < stride; i++) band[dst + 1 + i] = rgba[src + i] - rgba[src + i - 4];
    }
    await writer.write(band);
  }
  await writer.close();
  await reading;

  // IDAT may be split into several chunks; group the deflate output into ~1 MiB ones.
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), ...pngChunk("IHDR", ihdr)];
  let pending = [];
  let size = 0;
  const flush = () => {
    if (!size) return;
    const data = new Uint8Array(size);
    let o = 0;
    for (const p of pending) { data.set(p, o); o += p.length; }
    parts.push(...pngChunk("IDAT", data));
    pending = [];
    size = 0;
  };
  for (const piece of compressed) {
    pending.push(piece);
    size += piece.length;
    if (size >= 1 << 20) flush();
  }
  flush();
  parts.push(...pngChunk("IEND", new Uint8Array(0)));
  return new Blob(parts, { type: "image/png" });
}
