// alphacut workers: the page starts two copies of this script, so that image n+1 is
// in the model while image n is refined and encoded (a queue of N photos takes about
// N model runs). Same graphs as the Python engine, so the browser and Python agree.
//
//   role "model": the segmentation model only (WebGPU or WASM).
//   role "image": decoding, the pre-processing graph, the post-processing graph at
//                 full resolution, PNG/WebP encoding and thumbnails (always WASM).
//
// Messages in:  {type: "init", config, role, backend: "auto" | "webgpu" | "wasm"}
//   model:      {type: "infer", id, input}           (Float32Array 1x3xSxS, transferred)
//   image:      {type: "prepare", id, blob}          decode, check size, pre-process
//               {type: "finish", id, job, mask, dims, edges} refine the prepared image `job`,
//                                                    encode PNG, thumbnail
//               {type: "drop", id}                   forget the prepared image `id`
//               {type: "webp", id, png}              re-encode a finished PNG as WebP
//               {type: "touchup", ...}, {type: "touchup-mask", ...}, {type: "touchup-drop"}
//                                                    refine an edited mask (see "touch-up" below)
//               {type: "compose", id, key, png, photo, bg, options, output, quality}
//                                                    the listing photo of a finished cutout
//                                                    (see "listing photos" below)
// Messages out: {type: "progress", id?, stage, done?, total?}
//               {type: "ready", backend, detail, threads, ms}
//               {type: "prepared", id, input, width, height, thumb, ms}
//               {type: "mask", id, mask, ms}
//               {type: "finished", id, png, thumb, width, height, timings, review}
//                                                    (review: review.js's edgeConfidence)
//               {type: "encoded", id, blob, ms}
//               {type: "composed", id, bitmap?, blob?, width, height, layout, warnings, ms}
//               {type: "error", id?, message, fallback}

let ort = null;
let sessions = null;
let backend = "wasm";
let role = "model";
let config = null;
const jobs = new Map(); // image role: id -> {pixels, inputAlpha, width, height}
let lock = Promise.resolve(); // onnxruntime calls of this worker, one at a time
let cpuOptions = null; // onnxruntime session options on the CPU (set by init)

// The most pixels a photo may have here: 50 MP phone photos fit. The full-resolution
// stage runs in windows of at most a quarter megapixel, but the photo's RGBA is held
// in JavaScript, in the WebAssembly heap (4 GiB at most) and for the three images in
// flight at once; the Python engine (`alphacut cut`) goes to 250 MP.
const MAX_PIXELS = 64e6;
const MAX_SIDE = 32767; // the browser's canvas limit
const THUMB = 96; // thumbnail box, CSS pixels (drawn at 2x for sharp screens)

const post = (message, transfer = []) => self.postMessage(message, transfer);
const now = () => performance.now();

function serial(fn) {
  const run = lock.then(fn, fn);
  lock = run.catch(() => {});
  return run;
}

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === "init") await init(msg);
    else if (msg.type === "infer") await infer(msg);
    else if (msg.type === "prepare") await prepare(msg);
    else if (msg.type === "finish") await finish(msg);
    else if (msg.type === "drop") jobs.delete(msg.id);
    else if (msg.type === "webp") await encodeWebp(msg);
    else if (msg.type === "touchup") await touchup(msg);
    else if (msg.type === "touchup-mask") await encodeMaskPNG(msg);
    else if (msg.type === "touchup-drop") touchPhoto = null;
    else if (msg.type === "compose") await compose(msg);
    else if (msg.type === "deflate") await deflatePart(msg);
  } catch (error) {
    if (msg.id !== undefined) jobs.delete(msg.id);
    const message = describe(error);
    // A WebGPU failure is worth retrying on the CPU; the page restarts the model worker on WASM.
    post({ type: "error", id: msg.id, message, fallback: role === "model" && backend === "webgpu" });
  }
};

function describe(error) {
  if (typeof error === "number") {
    // onnxruntime-web reports some WASM aborts as a bare pointer.
    return "the browser ran out of memory for this image (try a smaller one, or alphacut cut)";
  }
  const text = String(error?.message ?? error);
  if (/out of memory|Array buffer allocation failed|Aborted\(\)|memory access out of bounds/i.test(text)) {
    return `the browser ran out of memory for this image (${text}); try a smaller one, or alphacut cut`;
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
  role = msg.role || "model";
  const t0 = now();
  const choice = role === "model" ? await chooseBackend(msg.backend || "auto") : { backend: "wasm" };
  backend = choice.backend;
  const rt = config.runtime[backend];
  ort = await import(rt.bundle);
  ort.env.logLevel = "error";
  ort.env.wasm.wasmPaths = { mjs: rt.mjs, wasm: rt.wasm };
  ort.env.wasm.proxy = false;
  // Threads need cross-origin isolation (SharedArrayBuffer); the server sends the headers.
  const threads = self.crossOriginIsolated ? Math.max(1, self.navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = threads;
  // logSeverityLevel 3: errors only (warnings would land in the console as errors).
  // No spinning: the two workers share the cores, and a spinning idle pool steals them.
  const cpu = (cpuOptions = {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
  if (role === "image") {
    sessions = { post: {} };
    // The default edge style's graphs are ready before the page says so; the others load when used.
    const [pre] = await Promise.all([fetchBytes(config.graphs.preprocess), postSession("auto"), applySession()]);
    sessions.pre = await ort.InferenceSession.create(pre, cpu);
    post({ type: "ready", backend, detail: "", threads, ms: now() - t0 });
    return;
  }
  post({ type: "progress", stage: "Loading the runtime" });
  const modelUrl = choice.modelUrl || config.model.wasm;
  const mb = (config.model.size / 1e6).toFixed(0);
  const model = await fetchBytes(modelUrl, `Loading the ${config.model.name} model (${mb} MB, once)`);
  post({ type: "progress", stage: "Preparing the model" });
  const options = backend === "webgpu" ? { ...cpu, executionProviders: ["webgpu"] } : cpu;
  sessions = { model: await ort.InferenceSession.create(model, options) };
  const detail = backend === "wasm" ? `CPU (WebAssembly, ${threads} thread${threads > 1 ? "s" : ""})` : choice.detail;
  post({ type: "ready", backend, detail, why: choice.why || null, threads, ms: now() - t0 });
}

// --- model role ------------------------------------------------------------------

async function infer(msg) {
  if (!sessions?.model) throw new Error("the model is not loaded yet");
  const t = now();
  const size = config.model.inputSize || 1024;
  const input = new ort.Tensor("float32", msg.input, [1, 3, size, size]);
  const model = sessions.model;
  const inputName = model.inputNames[0];
  const outputName = model.outputNames.includes("output") ? "output" : model.outputNames[0];
  const outputs = await model.run({ [inputName]: input }, [outputName]);
  const out = outputs[outputName];
  let mask = out.data;
  if (backend === "webgpu") {
    // Some WebGPU kernels fail silently with an all-zero result: treat it as a failure.
    let any = false;
    for (let i = 0; i < mask.length; i += 7) if (mask[i] !== 0) { any = true; break; }
    if (!any) throw new Error("WebGPU returned an empty mask");
  }
  if (mask.byteOffset !== 0 || mask.byteLength !== mask.buffer.byteLength) mask = mask.slice();
  post({ type: "mask", id: msg.id, mask, dims: out.dims, ms: now() - t }, [mask.buffer]);
}

// --- image role ------------------------------------------------------------------

async function decode(blob) {
  try {
    // EXIF orientation applied, colours converted to sRGB.
    return await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch {
    const accepted = ["image/png", "image/jpeg", "image/webp"].includes(blob.type);
    throw new Error(`cannot read this image (${accepted ? "it may be damaged or too large for this browser" : "supported: PNG, JPEG, WebP"})`);
  }
}

async function thumbnail(source, width, height) {
  const scale = Math.min(1, (2 * THUMB) / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const small = await createImageBitmap(source, { resizeWidth: w, resizeHeight: h, resizeQuality: "medium" });
  const canvas = new OffscreenCanvas(w, h);
  canvas.getContext("2d").drawImage(small, 0, 0);
  small.close();
  return canvas.convertToBlob({ type: "image/png" });
}

// A bitmap's RGBA pixels, as they are (closes the bitmap).
function bitmapPixels(bitmap) {
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = new Uint8Array(ctx.getImageData(0, 0, width, height).data.buffer);
  canvas.width = canvas.height = 1; // release the canvas memory early
  return { rgba, width, height };
}

// The photo's RGBA pixels as the refinement sees them (closes the bitmap). Like the
// Python engine: transparent input pixels are shown to the model over white, and the
// transparency the input had (inputAlpha, or null) is applied to the result.
function photoPixels(bitmap) {
  const { rgba: pixels, width, height } = bitmapPixels(bitmap);
  const n = width * height;
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
        for (let c = 0; c < 3; c++) pixels[4 * i + c] = Math.round(pixels[4 * i + c] * k + 255 * (1 - k));
      }
    }
  }
  return { pixels, inputAlpha };
}

async function prepare(msg) {
  const { id, blob } = msg;
  const t = now();
  const bitmap = await decode(blob);
  const { width, height } = bitmap;
  if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
    bitmap.close();
    const mp = ((width * height) / 1e6).toFixed(1);
    throw new Error(
      `this image is ${width} × ${height} (${mp} MP), more than a browser tab can process` +
        ` (up to ${MAX_PIXELS / 1e6} MP, ${MAX_SIDE} px a side): use the command line, alphacut cut`,
    );
  }
  const thumb = await thumbnail(bitmap, width, height);
  const { pixels, inputAlpha } = photoPixels(bitmap);
  const read = now() - t;
  const image = new ort.Tensor("uint8", pixels, [1, height, width, 4]);
  const result = await serial(() => sessions.pre.run({ image }, ["input"]));
  let input = result.input.data;
  if (input.byteOffset !== 0 || input.byteLength !== input.buffer.byteLength) input = input.slice();
  jobs.set(id, { pixels, inputAlpha, width, height, timings: { read, preprocess: now() - t - read } });
  post({ type: "prepared", id, input, width, height, thumb, ms: now() - t }, [input.buffer]);
}

// The coefficient graph of an edge style (the engine's Options.edges: auto, crisp or
// soft), created the first time that style is used; the apply graph is the same for all.
function postSession(edges) {
  const url = config.graphs.edges?.[edges];
  if (!url) throw new Error(`unknown edge style ${edges}`);
  sessions.post[edges] ??= fetchBytes(url).then((graph) => ort.InferenceSession.create(graph, cpuOptions));
  return sessions.post[edges];
}

function applySession() {
  sessions.apply ??= fetchBytes(config.graphs.apply).then((graph) => ort.InferenceSession.create(graph, cpuOptions));
  return sessions.apply;
}

// Where the apply graph must run, from coef_lim ([1, 2, gh, gw]: the clamp's lower and
// upper bounds): the engine's graphs.plan_windows, line for line. A window whose map
// cells all have both bounds at 0 (at 1) is exactly transparent (opaque) in the graph's
// result, so it is filled here, byte for byte what the graph would give.
const CLEAR = 0;
const OPAQUE = 1;
const COMPUTE = 2;
const WINDOW = 128;
const APPLY_PIXELS = 1 << 18; // the most pixels per apply call (as the engine's)

function cells(start, stop, full, grid) {
  return [Math.max(0, Math.floor((start * grid) / full) - 1), Math.min(grid, Math.ceil((stop * grid) / full) + 2)];
}

function planWindows(lim, height, width) {
  const [, , gh, gw] = lim.dims;
  const data = lim.data;
  const plane = gh * gw;
  const plan = [];
  const clearCols = new Uint8Array(gw);
  const opaqueCols = new Uint8Array(gw);
  for (let y0 = 0; y0 < height; y0 += WINDOW) {
    const y1 = Math.min(height, y0 + WINDOW);
    const [r0, r1] = cells(y0, y1, height, gh);
    clearCols.fill(1);
    opaqueCols.fill(1);
    for (let r = r0; r < r1; r++) {
      for (let c = 0; c < gw; c++) {
        if (data[plane + r * gw + c] !== 0) clearCols[c] = 0; // upper bound
        if (data[r * gw + c] !== 1) opaqueCols[c] = 0; // lower bound
      }
    }
    for (let x0 = 0; x0 < width; x0 += WINDOW) {
      const x1 = Math.min(width, x0 + WINDOW);
      const [c0, c1] = cells(x0, x1, width, gw);
      let clear = 1;
      let opaque = 1;
      for (let c = c0; c < c1; c++) {
        clear &= clearCols[c];
        opaque &= opaqueCols[c];
      }
      const kind = clear ? CLEAR : opaque ? OPAQUE : COMPUTE;
      const last = plan[plan.length - 1];
      if (last && last.y0 === y0 && last.x1 === x0 && last.kind === kind) last.x1 = x1;
      else plan.push({ y0, y1, x0, x1, kind });
    }
  }
  return plan;
}

// The post-processing graphs on a photo ({pixels, inputAlpha, width, height}) and a mask
// (Float32Array of the given dims): the cutout as straight uint8 RGBA (what ImageData
// wants). As the engine: the coefficient graph once, then the apply graph only in the
// windows where the model is unsure.
async function refine({ pixels, inputAlpha, width, height }, maskData, dims, edges = "auto") {
  const n = width * height;
  const image = new ort.Tensor("uint8", pixels, [1, height, width, 4]);
  const mask = new ort.Tensor("float32", maskData, dims);
  const [coefficients, apply] = await Promise.all([postSession(edges), applySession()]);
  const coefs = await serial(() => coefficients.run({ image, mask }, ["coef_a", "coef_b", "coef_lim", "coef_fg", "coef_bg"]));
  const rgba = new Uint8ClampedArray(n * 4); // zeros: transparent windows are done
  const alpha = inputAlpha ? new Float32Array(n) : null;
  const stride = width * 4;
  for (const { y0, y1, x0, x1, kind } of planWindows(coefs.coef_lim, height, width)) {
    if (kind === CLEAR) continue;
    if (kind === OPAQUE) {
      for (let y = y0; y < y1; y++) {
        for (let i = y * stride + x0 * 4, end = y * stride + x1 * 4; i < end; i += 4) {
          rgba[i] = pixels[i];
          rgba[i + 1] = pixels[i + 1];
          rgba[i + 2] = pixels[i + 2];
          rgba[i + 3] = 255;
        }
        if (alpha) alpha.fill(1, y * width + x0, y * width + x1);
      }
      continue;
    }
    const step = Math.max(1, Math.floor(APPLY_PIXELS / (y1 - y0)));
    for (let c0 = x0; c0 < x1; c0 += step) {
      const c1 = Math.min(x1, c0 + step);
      const w = c1 - c0;
      let window;
      if (w === width) window = pixels.subarray(y0 * stride, y1 * stride);
      else {
        window = new Uint8Array((y1 - y0) * w * 4);
        for (let y = y0; y < y1; y++) window.set(pixels.subarray(y * stride + c0 * 4, y * stride + c1 * 4), (y - y0) * w * 4);
      }
      const feeds = {
        ...coefs,
        image: new ort.Tensor("uint8", window, [1, y1 - y0, w, 4]),
        region: new ort.Tensor("int64", BigInt64Array.from([y0, c0, height, width].map(BigInt)), [4]),
      };
      const out = await serial(() => apply.run(feeds, ["alpha", "rgba"]));
      const part = out.rgba.data;
      for (let y = y0; y < y1; y++) {
        rgba.set(part.subarray((y - y0) * w * 4, (y - y0 + 1) * w * 4), y * stride + c0 * 4);
        if (alpha) alpha.set(out.alpha.data.subarray((y - y0) * w, (y - y0 + 1) * w), y * width + c0);
      }
    }
  }
  if (inputAlpha) {
    // Uint8ClampedArray rounds half to even and clamps: the same as numpy's rint + clip.
    // Fully transparent pixels carry no colour, as the engine's.
    for (let i = 0; i < n; i++) {
      rgba[4 * i + 3] = alpha[i] * inputAlpha[i];
      if (rgba[4 * i + 3] === 0) rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = 0;
    }
  }
  return rgba;
}

async function finish(msg) {
  const job = jobs.get(msg.job);
  if (!job) throw new Error("this image was dropped before it was finished");
  jobs.delete(msg.job);
  const { width, height, timings } = job;
  let t = now();
  const size = config.model.inputSize || 1024;
  const dims = msg.dims || [1, 1, size, size];
  const rgba = await refine(job, msg.mask, dims, msg.edges);
  timings.refine = now() - t;
  // Whether a person should look at this cutout: the engine's score, on the model's mask.
  t = now();
  const { edgeConfidence } = await import(config.review);
  const review = edgeConfidence(msg.mask, dims[3], dims[2]);
  timings.review = now() - t;
  t = now();
  const png = await encodePNG(rgba, width, height, timings);
  timings.encode = now() - t;
  const thumb = await thumbnail(new ImageData(rgba, width, height), width, height);
  post({ type: "finished", id: msg.id, png, thumb, width, height, timings, review });
}

async function encodeWebp(msg) {
  const t = now();
  const bitmap = await createImageBitmap(msg.png, { premultiplyAlpha: "none", colorSpaceConversion: "none" });
  const { width, height } = bitmap;
  if (width > 16383 || height > 16383) {
    bitmap.close();
    throw new Error("WebP cannot hold images wider or taller than 16383 pixels: use PNG");
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  // quality 1 selects the browser's lossless WebP encoder (no quality given: lossless, as
  // the engine's Options.quality None); the canvas is premultiplied, which rounds the
  // colours of nearly transparent pixels (the page says so).
  const blob = await canvas.convertToBlob({ type: "image/webp", quality: webpQuality(msg.quality) });
  canvas.width = canvas.height = 1;
  if (blob.type !== "image/webp") throw new Error("this browser cannot encode WebP: use PNG");
  post({ type: "encoded", id: msg.id, blob, ms: now() - t });
}

// --- listing photos (image role) ------------------------------------------------
// The cutout placed on a canvas over a background, with a shadow: the layout from
// listing.js (the engine's alphacut.listing, ported exactly), the pixels from the
// listing graphs (the engine's own), so the page gives the engine's listing photo.
//
// {type: "compose", id, key, png, photo, bg, options, output, quality}
//   key:     names this cutout (a new PNG, after an edit, gets a new key)
//   png:     the cutout (this worker's own PNG); photo: the original file (blur only);
//   bg:      {key, blob}, the background image the user opened (image only)
//   options: the listing options (listing.js DEFAULTS' names), or null: the cutout as it is
//   output:  "bitmap" (to show), or "png" | "webp" | "jpeg" (a file; quality 1..100, or null: lossless WebP)
// Only the last cutout, photo, background image and result are kept (re-decoded when
// another one is asked for): a job's pixels are gone once it is finished.

let listingModule = null;
const listingGraphs = new Map(); // graph name -> Promise<InferenceSession>
const listingCache = { source: null, photo: null, bg: null, result: null };

async function listingLayout() {
  listingModule ??= await import(config.listing.module);
  return listingModule;
}

function listingSession(name) {
  let session = listingGraphs.get(name);
  if (!session) {
    const url = config.listing?.graphs?.[name];
    if (!url) return Promise.reject(new Error(`this page has no listing graph ${name}`));
    session = fetchBytes(url).then((bytes) => ort.InferenceSession.create(bytes, cpuOptions));
    session.catch(() => listingGraphs.delete(name));
    listingGraphs.set(name, session);
  }
  return session;
}

async function pixelsOf(blob) {
  return bitmapPixels(await decode(blob));
}

async function listingSource(key, png) {
  if (listingCache.source?.key !== key) {
    listingCache.source = null;
    listingCache.result = null;
    const { rgba, width, height } = await decodePNG(png);
    const alpha = new Uint8Array(width * height);
    for (let i = 0; i < alpha.length; i++) alpha[i] = rgba[4 * i + 3];
    listingCache.source = { key, rgba, alpha, width, height, subject: undefined };
  }
  return listingCache.source;
}

async function compose(msg) {
  const t = now();
  const listing = await listingLayout();
  const source = await listingSource(msg.key, msg.png);
  const options = msg.options;
  const signature = JSON.stringify([msg.key, options, options?.background === "image" ? msg.bg?.key : null]);
  let result = listingCache.result;
  if (result?.signature !== signature) {
    listingCache.result = null;
    const { rgba, width, height } = source;
    const identity = { box: [0, 0, width, height], size: [width, height], canvas: [width, height], offset: [0, 0] };
    const color = listing.flattenColor(options);
    if (color) result = { rgba: flatten(rgba, color), width, height, layout: identity, warnings: [] };
    else if (options) result = await composeListing(listing, source, msg);
    else result = { rgba, width, height, layout: identity, warnings: [] };
    result.signature = signature;
    listingCache.result = result;
  }
  const { rgba, width, height } = result;
  const answer = { type: "composed", id: msg.id, width, height, layout: result.layout, warnings: result.warnings };
  if (msg.output === "bitmap") {
    const pixels = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, width * height * 4);
    answer.bitmap = await createImageBitmap(new ImageData(pixels, width, height), { premultiplyAlpha: "premultiply" });
    answer.ms = now() - t;
    post(answer, [answer.bitmap]);
    return;
  }
  // JPEG has no alpha: what is not opaque is flattened over white (the engine's JPEG).
  const opaque = (() => {
    for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
    return true;
  })();
  const pixels = msg.output === "jpeg" && !opaque ? flatten(rgba, [255, 255, 255]) : rgba;
  answer.blob = await encodeRGBA(pixels, width, height, msg.output, msg.quality);
  answer.ms = now() - t;
  post(answer);
}

async function composeListing(listing, source, msg) {
  const options = msg.options;
  const { width, height } = source;
  const subjectOf = () => (source.subject === undefined ? (source.subject = listing.subjectBox(source.alpha, width, height)) : source.subject);
  const lay = listing.layout(source.alpha, width, height, options, subjectOf);
  const [cw, ch] = lay.canvas;
  if (cw > MAX_SIDE || ch > MAX_SIDE || cw * ch > MAX_PIXELS) {
    throw new Error(`a ${cw} × ${ch} canvas is more than a browser tab can make: choose a smaller canvas, or use alphacut cut`);
  }
  const name = listing.graphName(options);
  const session = await listingSession(name);
  const feeds = {
    rgba: new ort.Tensor("uint8", source.rgba, [1, height, width, 4]),
    layout: new ort.Tensor("int64", listing.layoutVector(lay), [10]),
    style: new ort.Tensor("float32", listing.styleVector(options, lay), [8]),
  };
  if (!session.inputNames.includes("photo")) listingCache.photo = null; // only the blur needs it
  else {
    if (!msg.photo) throw new Error("the blurred background needs the original photo");
    if (listingCache.photo?.key !== msg.key) {
      listingCache.photo = null;
      const photo = await pixelsOf(msg.photo);
      listingCache.photo = { key: msg.key, ...photo };
    }
    const photo = listingCache.photo;
    feeds.photo = new ort.Tensor("uint8", photo.rgba, [1, photo.height, photo.width, 4]);
  }
  if (session.inputNames.includes("bgimage")) {
    if (!msg.bg) throw new Error("open a background image first");
    if (listingCache.bg?.key !== msg.bg.key) {
      listingCache.bg = null;
      const image = await pixelsOf(msg.bg.blob);
      const rgb = new Uint8Array(image.width * image.height * 3);
      for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
        rgb[j] = image.rgba[i];
        rgb[j + 1] = image.rgba[i + 1];
        rgb[j + 2] = image.rgba[i + 2];
      }
      listingCache.bg = { key: msg.bg.key, rgb, width: image.width, height: image.height };
    }
    const bg = listingCache.bg;
    feeds.bgimage = new ort.Tensor("uint8", bg.rgb, [1, bg.height, bg.width, 3]);
  }
  const out = await serial(() => session.run(feeds, ["out"]));
  const data = out.out.data;
  const layoutInfo = { box: lay.box, size: lay.size, canvas: lay.canvas, offset: lay.offset };
  return { rgba: data, width: cw, height: ch, layout: layoutInfo, warnings: lay.warnings };
}

// The cutout over an opaque colour, as the engine's encoder flattens it (imageio.encode:
// float32 arithmetic, rounded half to even), so a flattened export has the engine's pixels.
function flatten(rgba, [r, g, b]) {
  const f = Math.fround;
  const rint = (x) => {
    const n = Math.round(x);
    return n - x === 0.5 && n % 2 !== 0 ? n - 1 : n;
  };
  // table[c][A * 256 + V]: channel c of value V at alpha A.
  const table = [r, g, b].map((bgValue) => {
    const bg = f(bgValue / 255);
    const t = new Uint8Array(65536);
    for (let A = 0; A < 256; A++) {
      const a = f(A / 255);
      const behind = f(bg * f(1 - a));
      for (let V = 0; V < 256; V++) t[A * 256 + V] = rint(f(f(f(f(V / 255) * a) + behind) * 255));
    }
    return t;
  });
  const out = new Uint8Array(rgba.length);
  for (let i = 0; i < rgba.length; i += 4) {
    const A = rgba[i + 3] * 256;
    out[i] = table[0][A + rgba[i]];
    out[i + 1] = table[1][A + rgba[i + 1]];
    out[i + 2] = table[2][A + rgba[i + 2]];
    out[i + 3] = 255;
  }
  return out;
}

// convertToBlob's quality for WebP: 1 is the lossless encoder (quality null or undefined,
// as the engine's default); a quality 1..100 is lossy, capped below 1 so that 100 stays lossy.
function webpQuality(quality) {
  if (typeof quality !== "number") return 1;
  return Math.min(0.999, Math.max(1, quality) / 100);
}

// Straight RGBA -> a file: PNG (exact), WebP (lossless, or lossy at a quality given) or
// JPEG (opaque pixels only; quality 1..100, 95 by default).
async function encodeRGBA(rgba, width, height, format, quality = 95) {
  if (format === "png") return encodePNG(rgba, width, height);
  if (format === "webp" && (width > 16383 || height > 16383)) {
    throw new Error("WebP cannot hold images wider or taller than 16383 pixels: use PNG");
  }
  const pixels = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, width * height * 4);
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
  const type = format === "jpeg" ? "image/jpeg" : "image/webp";
  const q = format === "jpeg" ? Math.min(100, Math.max(1, quality ?? 95)) / 100 : webpQuality(quality);
  const blob = await canvas.convertToBlob({ type, quality: q });
  canvas.width = canvas.height = 1;
  if (blob.type !== type) throw new Error(`this browser cannot encode ${format.toUpperCase()}: use PNG`);
  return blob;
}

// --- PNG decoder -----------------------------------------------------------
// Reads this worker's own PNGs (8-bit RGBA, not interlaced) exactly: a canvas would
// premultiply, rounding the colours of nearly transparent pixels. Any other PNG goes
// through the browser's decoder.

async function decodePNG(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const view = new DataView(bytes.buffer);
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  const ours = signature.every((b, i) => bytes[i] === b) && bytes.length > 33 &&
    view.getUint32(16) > 0 && bytes[24] === 8 && bytes[25] === 6 && bytes[28] === 0;
  if (!ours) return pixelsOf(blob);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const writing = (async () => {
    for (let at = 8; at + 8 <= bytes.length;) {
      const length = view.getUint32(at);
      const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
      if (type === "IDAT") await writer.write(bytes.subarray(at + 8, at + 8 + length));
      if (type === "IEND") break;
      at += 12 + length;
    }
    await writer.close();
  })();
  const stride = width * 4;
  const rgba = new Uint8Array(stride * height);
  const reader = stream.readable.getReader();
  let row = 0;
  let filter = -1;
  let x = 0; // bytes of the current row read so far
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (let i = 0; i < value.length && row < height;) {
      if (filter < 0) {
        filter = value[i++];
        x = 0;
        continue;
      }
      const n = Math.min(stride - x, value.length - i);
      const dst = row * stride;
      for (let k = 0; k < n; k++, x++) {
        const raw = value[i + k];
        const left = x >= 4 ? rgba[dst + x - 4] : 0;
        const up = row > 0 ? rgba[dst - stride + x] : 0;
        const ul = row > 0 && x >= 4 ? rgba[dst - stride + x - 4] : 0;
        let v;
        if (filter === 0) v = raw;
        else if (filter === 1) v = raw + left;
        else if (filter === 2) v = raw + up;
        else if (filter === 3) v = raw + ((left + up) >> 1);
        else {
          const p = left + up - ul;
          const pa = Math.abs(p - left), pb = Math.abs(p - up), pc = Math.abs(p - ul);
          v = raw + (pa <= pb && pa <= pc ? left : pb <= pc ? up : ul);
        }
        rgba[dst + x] = v;
      }
      i += n;
      if (x === stride) {
        row++;
        filter = -1;
      }
    }
  }
  await writing;
  if (row < height) throw new Error("this PNG is cut short");
  return { rgba, width, height };
}

// --- touch-up (image role) ---------------------------------------------------------
// The page's touch-up (touchup.js) edits a cutout's mask; each edit is refined here by
// the same post-processing graph as a cutout (sessions.post) with the edited mask as
// `mask`, so the edges and colours are re-estimated for it, as the engine's
// `--start-mask` does. A finished job's pixels are gone: the photo is decoded again from
// its file, and only the last one is kept, for the next edit of the same photo.
//
// {type: "touchup", id, key, blob, mask, maskWidth, maskHeight, edges}
//   key: names the photo (the page's item); blob: its file; mask: Float32Array, 0..1
//   -> {type: "touchedup", id, png, width, height, ms}
// {type: "touchup-mask", id, mask, width, height}: the edited mask (Uint8Array, 0..255)
//   -> {type: "touchup-mask", id, png}, a grayscale PNG
// {type: "touchup-drop"}: forget the kept photo

let touchPhoto = null; // {key, pixels, inputAlpha, width, height}

async function touchPixels(key, blob) {
  if (touchPhoto?.key === key) return touchPhoto;
  touchPhoto = null;
  const bitmap = await decode(blob);
  const { width, height } = bitmap;
  // The same pixels a cutout's refinement saw (see prepare).
  const { pixels, inputAlpha } = photoPixels(bitmap);
  touchPhoto = { key, pixels, inputAlpha, width, height };
  return touchPhoto;
}

async function touchup(msg) {
  const t = now();
  const photo = await touchPixels(msg.key, msg.blob);
  const { width, height } = photo;
  const rgba = await refine(photo, msg.mask, [1, 1, msg.maskHeight, msg.maskWidth], msg.edges);
  const png = await encodePNG(rgba, width, height);
  post({ type: "touchedup", id: msg.id, png, width, height, ms: now() - t });
}

// The mask as an 8-bit grayscale PNG: what `alphacut cut --start-mask` reads back exactly.
async function encodeMaskPNG(msg) {
  const { mask, width, height } = msg;
  const rows = new Uint8Array(height * (width + 1)); // each row: filter byte 0, then the row
  for (let y = 0; y < height; y++) rows.set(mask.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const png = pngBlob(width, height, GRAY, [await zlibOf([rows])]); // rows unfiltered (filter byte 0)
  post({ type: "touchup-mask", id: msg.id, png });
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

const GRAY = 0;
const RGBA = 6;

// The PNG signature and IHDR: 8 bits per sample, deflate, adaptive filtering, no interlace.
function pngStart(width, height, colorType) {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, colorType, 0, 0, 0], 8);
  return [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), ...pngChunk("IHDR", ihdr)];
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

// Rows y0..y1 of straight RGBA, PNG-filtered ("Up": on cutouts, 10 % smaller files than
// "Sub" at the same speed): each row a filter byte and the row.
function filterRows(rgba, width, y0, y1) {
  const stride = width * 4;
  const band = new Uint8Array((y1 - y0) * (stride + 1));
  const words = rgba.byteOffset % 4 === 0 ? new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.length >> 2) : null;
  const out = new Uint32Array(width);
  const outBytes = new Uint8Array(out.buffer);
  for (let y = y0; y < y1; y++) {
    const src = y * stride;
    const dst = (y - y0) * (stride + 1);
    band[dst] = 2;
    if (y === 0) band.set(rgba.subarray(0, stride), dst + 1); // the row above the first is 0
    else if (words) {
      // Four bytes at a time, each lane on its own: (a - b) mod 256 without borrows.
      for (let i = 0, k = src >> 2; i < width; i++, k++) {
        const a = words[k];
        const b = words[k - width];
        out[i] = ((a | 0x80808080) - (b & 0x7f7f7f7f)) ^ ((a ^ ~b) & 0x80808080);
      }
      band.set(outBytes, dst + 1);
    } else for (let i = 0; i < stride; i++) band[dst + 1 + i] = rgba[src + i] - rgba[src + i - stride];
  }
  return band;
}

// The zlib stream of some bytes (Uint8Arrays, written in turn) as one Uint8Array.
async function zlibOf(pieces) {
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
  for await (const piece of pieces) await writer.write(piece);
  await writer.close();
  await reading;
  return concatBytes(compressed);
}

function concatBytes(chunks) {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

// Filtered rows y0..y1 in bands of about 4 MiB (memory stays bounded).
function* filteredBands(rgba, width, y0, y1) {
  const bandRows = Math.max(1, Math.floor((4 << 20) / (width * 4 + 1)));
  for (let y = y0; y < y1; y += bandRows) yield filterRows(rgba, width, y, Math.min(y1, y + bandRows));
}

// A second thread for the PNG's deflate: a worker of this same script, made when first
// needed ({type: "deflate", id, data} -> {type: "deflated", id, zlib}).
let helper = null;
const helperCalls = new Map();
let helperSeq = 0;
const HELPER_TIMEOUT_MS = 120_000; // half of a 64 MP photo's PNG takes a few seconds

// Ends the helper: every call it has not answered fails (their callers compress alone).
function dropHelper(reason) {
  helper?.terminate();
  helper = null;
  const calls = [...helperCalls.values()];
  helperCalls.clear();
  for (const call of calls) call.reject(new Error(reason));
}

function deflateElsewhere(data) {
  if (!helper) {
    helper = new Worker(self.location.href, { type: "module", name: "alphacut-deflate" });
    helper.onmessage = ({ data: reply }) => {
      const call = helperCalls.get(reply.id);
      helperCalls.delete(reply.id);
      if (reply.type === "deflated") call?.resolve(reply.zlib);
      else call?.reject(new Error(reply.message || "the deflate worker failed"));
    };
    helper.onerror = (event) => {
      event.preventDefault();
      dropHelper("the deflate worker failed");
    };
  }
  const id = ++helperSeq;
  return new Promise((resolve, reject) => {
    // A helper that never answers (killed for memory, say) must not hang the cutout: the
    // caller then compresses the photo in one part, and a fresh helper serves the next.
    const timer = setTimeout(() => dropHelper("the deflate worker did not answer"), HELPER_TIMEOUT_MS);
    const settle = (fn) => (value) => {
      clearTimeout(timer);
      fn(value);
    };
    helperCalls.set(id, { resolve: settle(resolve), reject: settle(reject) });
    helper.postMessage({ type: "deflate", id, data }, [data.buffer]);
  });
}

async function deflatePart(msg) {
  const zlib = await zlibOf([msg.data]);
  post({ type: "deflated", id: msg.id, zlib }, [zlib.buffer]);
}

// From about half a megapixel, the PNG is compressed in two parts at once (here and in
// the helper) and the parts joined into one zlib stream (deflate.js); below, in one.
const PARALLEL_PIXELS = 1 << 19;

// The row that splits the deflate work in two about equal halves: transparent rows cost
// little (zeros), the subject's rows most (sampled: every 4th pixel).
function splitRow(rgba, width, height) {
  const cost = new Float64Array(height + 1);
  for (let y = 0; y < height; y++) {
    let visible = 0;
    for (let i = y * width * 4 + 3, end = (y + 1) * width * 4; i < end; i += 16) visible += rgba[i] !== 0;
    cost[y + 1] = cost[y] + visible * 4 + 0.15 * width;
  }
  // A little less for this thread, which also filters the other part and joins them.
  const target = 0.47 * cost[height];
  let y = 1;
  while (y < height - 1 && cost[y] < target) y++;
  return y;
}

async function deflateInTwo(rgba, width, height) {
  const cut = splitRow(rgba, width, height);
  const second = filterRows(rgba, width, cut, height);
  const length = second.length;
  const [{ joinZlib }, other, first] = await Promise.all([
    import(config.deflate),
    deflateElsewhere(second),
    zlibOf(filteredBands(rgba, width, 0, cut)),
  ]);
  return joinZlib([
    { zlib: first, length: cut * (width * 4 + 1) },
    { zlib: other, length },
  ]);
}

// Straight RGBA -> a PNG Blob. `stats`, if given, gets deflateParts: how many parts the
// image was compressed in (2 on two threads, 1 in one).
async function encodePNG(rgba, width, height, stats = null) {
  let compressed = null;
  if (width * height >= PARALLEL_PIXELS && height >= 2) {
    try {
      compressed = await deflateInTwo(rgba, width, height);
      if (!compressed) console.warn("PNG compressed in one part: the two parts did not join");
    } catch (error) {
      console.warn(`PNG compressed in one part: ${error.message}`);
    }
  }
  if (stats) stats.deflateParts = compressed ? 2 : 1;
  compressed ??= [await zlibOf(filteredBands(rgba, width, 0, height))];
  return pngBlob(width, height, RGBA, compressed);
}

// A PNG file from its zlib stream (Uint8Arrays to concatenate), in IDAT chunks of about
// 1 MiB each.
function pngBlob(width, height, colorType, compressed) {
  const parts = pngStart(width, height, colorType);
  let pending = [];
  let size = 0;
  const flush = () => {
    if (!size) return;
    parts.push(...pngChunk("IDAT", concatBytes(pending)));
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
