// alphacut page: open an image, cut it out in a worker, review it, export it.
// Nothing here sends the image anywhere: the worker runs the model in this tab.

const config = JSON.parse(document.getElementById("alphacut-config").textContent);
const $ = (id) => document.getElementById(id);

const MAX_ZOOM = 8; // 800 %
const ACCEPTED = ["image/png", "image/jpeg", "image/webp"];
// Beyond this the post-processing at full resolution does not fit the 4 GiB a
// WebAssembly page may use; the Python engine (`alphacut cut`) has no such limit.
const MAX_PIXELS = 36e6;
const MAX_SIDE = 32767; // the browser's canvas limit

const ui = {
  dropzone: $("dropzone"),
  fileInput: $("file-input"),
  status: $("status"),
  statusText: $("status-text"),
  statusTime: $("status-time"),
  progress: $("status-progress"),
  viewer: $("viewer"),
  stage: $("stage"),
  before: $("before"),
  after: $("after"),
  layerAfter: $("layer-after"),
  divider: $("divider"),
  split: $("split"),
  zoomLevel: $("zoom-level"),
  backendBadge: $("backend-badge"),
  offlineBadge: $("offline-badge"),
  exportPng: $("export-png"),
  exportWebp: $("export-webp"),
  details: $("image-details"),
  backendSelect: $("backend-select"),
  bgColor: $("bg-color"),
};

const state = {
  worker: null,
  ready: null, // Promise resolved when the worker has loaded the model
  backend: null,
  busy: false,
  job: 0,
  file: null, // {blob, name}
  width: 0,
  height: 0,
  view: { scale: 1, x: 0, y: 0 },
  split: 50,
  hasResult: false,
  resultId: null,
};

// --- status --------------------------------------------------------------------

let ticker = null;

// progress: null (none), a fraction 0..1 (a bar), or true (busy, length unknown).
function setStatus(text, { error = false, time = "", progress = null } = {}) {
  clearInterval(ticker);
  ticker = null;
  ui.statusText.textContent = text;
  ui.statusTime.textContent = time;
  ui.status.classList.toggle("error", error);
  ui.status.dataset.state = error ? "error" : "ok";
  ui.progress.hidden = typeof progress !== "number";
  if (typeof progress === "number") ui.progress.value = progress;
  if (progress === true) {
    // Busy: a seconds count, not an indeterminate bar. That bar's animation repaints
    // 60 times a second, CPU the model needs on a small machine (measured: ~1-2 %).
    const started = performance.now();
    ticker = setInterval(() => {
      ui.statusText.textContent = `${text} ${Math.floor((performance.now() - started) / 1000)} s`;
    }, 1000);
  }
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

// --- worker --------------------------------------------------------------------

let pending = new Map(); // job id -> {resolve, reject}

function startWorker(backend) {
  state.worker?.terminate();
  for (const { reject } of pending.values()) reject(new Error("worker restarted"));
  pending = new Map();
  const worker = new Worker(config.worker, { type: "module", name: "alphacut-inference" });
  state.worker = worker;
  document.body.dataset.ready = "false";
  state.ready = new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      const msg = event.data;
      if (msg.type === "ready") {
        state.backend = msg;
        ui.backendBadge.textContent = msg.detail;
        ui.backendBadge.classList.add("ok");
        document.body.dataset.ready = "true";
        document.body.dataset.backend = msg.backend;
        if (!state.busy) setStatus(`Ready: model loaded in ${seconds(msg.ms)}. Open an image to start.`);
        watchOffline(msg.backend);
        resolve(msg);
      } else if (msg.type === "progress") {
        const fraction = msg.total ? msg.done / msg.total : true;
        const extra = msg.total ? ` ${Math.round((100 * msg.done) / msg.total)} %` : "…";
        setStatus(`${msg.stage}${extra}`, { progress: fraction, time: backendLabel() });
      } else if (msg.type === "error" && msg.id === undefined) {
        reject(Object.assign(new Error(msg.message), { fallback: msg.fallback }));
      } else {
        const job = pending.get(msg.id);
        if (!job) return;
        pending.delete(msg.id);
        if (msg.type === "error") job.reject(Object.assign(new Error(msg.message), { fallback: msg.fallback }));
        else job.resolve(msg);
      }
    };
    worker.onerror = (event) => {
      const error = new Error(event.message || "the inference worker crashed");
      reject(error);
      for (const job of pending.values()) job.reject(error);
      pending.clear();
    };
  });
  worker.postMessage({ type: "init", config, backend });
  return state.ready;
}

function backendLabel() {
  return state.backend ? state.backend.detail : "";
}

function call(message, transfer = []) {
  const id = ++state.job;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    state.worker.postMessage({ ...message, id }, transfer);
  });
}

async function ensureWorker() {
  try {
    return await state.ready;
  } catch (error) {
    if (error.fallback) {
      setStatus(`WebGPU failed (${error.message}); switching to the CPU.`, { progress: true });
      return startWorker("wasm");
    }
    throw error;
  }
}

// --- offline -------------------------------------------------------------------

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      // First visit: wait (briefly) for the worker to take control, so the model
      // download below goes through it and lands in the offline cache.
      await new Promise((resolve) => {
        navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true });
        setTimeout(resolve, 3000);
      });
    }
  } catch (error) {
    console.warn("alphacut: offline mode unavailable:", error);
  }
}

async function watchOffline(backend) {
  if (!("caches" in window) || !navigator.serviceWorker?.controller) return;
  const rt = config.runtime[backend];
  const needed = [
    "/",
    config.worker,
    config.graphs.preprocess,
    config.graphs.postprocess,
    rt.bundle,
    rt.mjs,
    rt.wasm,
    backend === "webgpu" ? null : config.model.wasm,
  ].filter(Boolean);
  for (let i = 0; i < 120; i++) {
    const cache = await caches.open("alphacut");
    const hits = await Promise.all(needed.map((url) => cache.match(url)));
    if (hits.every(Boolean)) {
      if (backend === "webgpu") {
        const keys = await cache.keys();
        const urls = new Set(keys.map((r) => new URL(r.url).pathname));
        if (!Object.values(config.model.webgpu).some((u) => urls.has(u))) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
      }
      ui.offlineBadge.hidden = false;
      document.body.dataset.offline = "true";
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// --- opening images ------------------------------------------------------------

function outputName(name, ext) {
  const base = (name || "image").replace(/\.[^./\\]+$/, "") || "image";
  return `${base}-cutout.${ext}`;
}

async function openFile(blob, name) {
  if (state.busy) return;
  if (blob.type && !blob.type.startsWith("image/")) {
    setStatus(`${name} is not an image: open a PNG, JPEG or WebP file.`, { error: true });
    return;
  }
  state.busy = true;
  state.file = { blob, name: name || "pasted-image.png" };
  setExportEnabled(false);
  try {
    await cutOut();
  } finally {
    state.busy = false;
  }
}

async function decode(blob) {
  try {
    // EXIF orientation applied, colours converted to sRGB.
    return await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch {
    const kind = ACCEPTED.includes(blob.type) ? "it may be damaged or too large for this browser" : "supported: PNG, JPEG, WebP";
    throw new Error(`Cannot read this image (${kind}).`);
  }
}

async function cutOut() {
  const started = performance.now();
  const { blob, name } = state.file;
  try {
    setStatus("Reading the image…", { progress: true });
    const bitmap = await decode(blob);
    const { width, height } = bitmap;
    if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
      bitmap.close();
      const mp = ((width * height) / 1e6).toFixed(1);
      throw new Error(
        `This image is ${width} × ${height} (${mp} MP), more than a browser tab can process` +
          ` (up to ${MAX_PIXELS / 1e6} MP, ${MAX_SIDE} px a side). Use the command line: alphacut cut ${name}`,
      );
    }
    showBefore(bitmap);
    ui.details.textContent = `${name}: ${width} × ${height} px`;
    await ensureWorker();
    let result;
    let fellBack = "";
    try {
      result = await call({ type: "cut", bitmap }, [bitmap]);
    } catch (error) {
      if (!error.fallback) throw error;
      fellBack = error.message;
      // Read by the tests: why this cutout was redone on the CPU.
      document.body.dataset.fallback = fellBack;
      setStatus(`WebGPU failed (${fellBack}); retrying on the CPU…`, { progress: true });
      await startWorker("wasm");
      const again = await decode(blob);
      result = await call({ type: "cut", bitmap: again }, [again]);
    }
    showAfter(result.bitmap);
    const total = performance.now() - started;
    const t = result.timings;
    const note = fellBack ? ` Redone on the CPU: WebGPU failed (${fellBack}).` : "";
    setStatus(`Done in ${seconds(total)}: subject ${seconds(t.inference)}, edges and colours ${seconds(t.refine)}.${note}`, {
      time: backendLabel(),
    });
    state.resultId = result.id;
    // Read by the tests and the benchmark.
    document.body.dataset.cutMs = String(Math.round(total));
    document.body.dataset.timings = JSON.stringify(t);
    document.body.dataset.result = String(result.id);
    setExportEnabled(true);
  } catch (error) {
    setStatus(error.message || String(error), { error: true });
    if (/worker|memory/i.test(error.message || "")) {
      // A crashed or exhausted worker is replaced, so the next image starts clean.
      startWorker(ui.backendSelect.value).catch(() => {});
    }
  }
}

// --- viewer: before/after, zoom, pan ------------------------------------------

function showBefore(bitmap) {
  state.width = bitmap.width;
  state.height = bitmap.height;
  for (const canvas of [ui.before, ui.after]) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.style.width = `${bitmap.width}px`;
    canvas.style.height = `${bitmap.height}px`;
  }
  ui.before.getContext("2d").drawImage(bitmap, 0, 0);
  ui.after.getContext("2d").clearRect(0, 0, bitmap.width, bitmap.height);
  ui.viewer.hidden = false;
  ui.dropzone.classList.add("compact");
  state.hasResult = false;
  fit();
}

function showAfter(bitmap) {
  const ctx = ui.after.getContext("2d");
  ctx.clearRect(0, 0, ui.after.width, ui.after.height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  state.hasResult = true;
}

function applyView() {
  const { scale, x, y } = state.view;
  const transform = `translate(${x}px, ${y}px) scale(${scale})`;
  ui.before.style.transform = transform;
  ui.after.style.transform = transform;
  const pixelated = scale >= 2;
  ui.before.classList.toggle("pixelated", pixelated);
  ui.after.classList.toggle("pixelated", pixelated);
  // Keep the checkerboard squares 16 screen pixels whatever the zoom.
  ui.after.style.backgroundSize = `${16 / scale}px ${16 / scale}px`;
  ui.zoomLevel.textContent = `${Math.round(scale * 100)}%`;
  const w = ui.stage.clientWidth;
  const px = (state.split / 100) * w;
  ui.layerAfter.style.clipPath = `inset(0 0 0 ${px}px)`;
  ui.divider.style.left = `${px}px`;
}

function fit() {
  const w = ui.stage.clientWidth;
  const h = ui.stage.clientHeight;
  if (!state.width || !w || !h) return;
  const scale = Math.min(w / state.width, h / state.height, 1);
  state.view = { scale, x: (w - state.width * scale) / 2, y: (h - state.height * scale) / 2 };
  applyView();
}

function zoomTo(scale, cx, cy) {
  const w = ui.stage.clientWidth;
  const h = ui.stage.clientHeight;
  const min = Math.min(0.05, w / state.width, h / state.height);
  scale = Math.min(MAX_ZOOM, Math.max(min, scale));
  const { scale: s, x, y } = state.view;
  cx ??= w / 2;
  cy ??= h / 2;
  state.view = { scale, x: cx - ((cx - x) * scale) / s, y: cy - ((cy - y) * scale) / s };
  applyView();
}

function setupViewer() {
  $("zoom-in").addEventListener("click", () => zoomTo(state.view.scale * 1.5));
  $("zoom-out").addEventListener("click", () => zoomTo(state.view.scale / 1.5));
  $("zoom-fit").addEventListener("click", fit);
  $("zoom-100").addEventListener("click", () => zoomTo(1));
  ui.split.addEventListener("input", () => {
    state.split = Number(ui.split.value);
    applyView();
  });
  ui.stage.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const rect = ui.stage.getBoundingClientRect();
      const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
      zoomTo(state.view.scale * factor, event.clientX - rect.left, event.clientY - rect.top);
    },
    { passive: false },
  );
  let drag = null;
  ui.stage.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const onDivider = event.target.closest("#divider");
    drag = { mode: onDivider ? "split" : "pan", x: event.clientX, y: event.clientY, view: { ...state.view } };
    ui.stage.setPointerCapture(event.pointerId);
    ui.stage.classList.toggle("panning", drag.mode === "pan");
  });
  ui.stage.addEventListener("pointermove", (event) => {
    if (!drag) return;
    if (drag.mode === "split") {
      const rect = ui.stage.getBoundingClientRect();
      state.split = Math.min(100, Math.max(0, ((event.clientX - rect.left) / rect.width) * 100));
      ui.split.value = String(state.split);
    } else {
      state.view = { ...drag.view, x: drag.view.x + event.clientX - drag.x, y: drag.view.y + event.clientY - drag.y };
    }
    applyView();
  });
  const end = () => {
    drag = null;
    ui.stage.classList.remove("panning");
  };
  ui.stage.addEventListener("pointerup", end);
  ui.stage.addEventListener("pointercancel", end);
  ui.stage.addEventListener("keydown", (event) => {
    const step = 40;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (event.key === "+" || event.key === "=") zoomTo(state.view.scale * 1.5);
    else if (event.key === "-") zoomTo(state.view.scale / 1.5);
    else if (event.key === "0") fit();
    else if (event.key === "1") zoomTo(1);
    else if (moves[event.key]) {
      state.view.x += moves[event.key][0];
      state.view.y += moves[event.key][1];
      applyView();
    } else return;
    event.preventDefault();
  });
  new ResizeObserver(() => (state.hasResult || state.width ? applyView() : null)).observe(ui.stage);

  const setBackground = () => {
    const value = document.querySelector('input[name="bg"]:checked').value;
    ui.after.classList.toggle("bg-checker", value === "checker");
    ui.after.style.backgroundColor = { checker: "", white: "#ffffff", black: "#000000", custom: ui.bgColor.value }[value];
  };
  for (const radio of document.querySelectorAll('input[name="bg"]')) radio.addEventListener("change", setBackground);
  ui.bgColor.addEventListener("input", () => {
    document.querySelector('input[name="bg"][value="custom"]').checked = true;
    setBackground();
  });
}

// --- export --------------------------------------------------------------------

function setExportEnabled(enabled) {
  ui.exportPng.disabled = !enabled;
  ui.exportWebp.disabled = !enabled;
}

async function exportAs(format) {
  if (!state.hasResult || state.busy) return;
  const started = performance.now();
  state.busy = true;
  setExportEnabled(false);
  try {
    const msg = await call({ type: "export", format, resultId: state.resultId });
    const url = URL.createObjectURL(msg.blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = outputName(state.file.name, format);
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    const kb = (msg.blob.size / 1024).toFixed(0);
    document.body.dataset.exportMs = String(Math.round(performance.now() - started));
    document.body.dataset.exported = String(msg.id);
    setStatus(`Saved ${link.download} (${kb} KB, encoded in ${seconds(msg.ms)}).`, { time: backendLabel() });
  } catch (error) {
    setStatus(`Export failed: ${error.message}`, { error: true });
  } finally {
    state.busy = false;
    setExportEnabled(true);
  }
}

// --- input: picker, drag and drop, paste -------------------------------------

function setupInput() {
  ui.fileInput.addEventListener("change", () => {
    const file = ui.fileInput.files[0];
    if (file) openFile(file, file.name);
    ui.fileInput.value = "";
  });
  $("choose-button").addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      ui.fileInput.click();
    }
  });
  $("new-image").addEventListener("click", () => ui.fileInput.click());
  let depth = 0;
  document.addEventListener("dragenter", (event) => {
    if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
    depth++;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    const file = [...(event.dataTransfer?.files || [])][0];
    if (file) openFile(file, file.name);
  });
  document.addEventListener("paste", (event) => {
    const item = [...(event.clipboardData?.items || [])].find((i) => i.kind === "file" && i.type.startsWith("image/"));
    const file = item?.getAsFile();
    if (file) {
      event.preventDefault();
      openFile(file, file.name && file.name !== "image.png" ? file.name : "pasted-image.png");
    }
  });
  ui.exportPng.addEventListener("click", () => exportAs("png"));
  ui.exportWebp.addEventListener("click", () => exportAs("webp"));
  ui.backendSelect.addEventListener("change", () => {
    if (state.busy) return;
    setStatus("Switching backend…", { progress: true });
    startWorker(ui.backendSelect.value).catch((error) => setStatus(error.message, { error: true }));
  });
}

// --- start ---------------------------------------------------------------------

async function main() {
  setupViewer();
  setupInput();
  const wanted = new URLSearchParams(location.search).get("backend");
  if (["auto", "webgpu", "wasm"].includes(wanted)) ui.backendSelect.value = wanted;
  setStatus("Starting…", { progress: true });
  await registerServiceWorker();
  try {
    startWorker(ui.backendSelect.value).catch(() => {}); // handled by ensureWorker
    await ensureWorker();
  } catch (error) {
    setStatus(`Cannot load the model: ${error.message}`, { error: true });
  }
}

main();
