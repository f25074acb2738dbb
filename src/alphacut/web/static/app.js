// alphacut page: a queue of images cut out in two workers, reviewed and exported here.
// Nothing here sends an image anywhere: the workers run the model in this tab, and the
// downloads (one image, or all of them as a ZIP) are made from this tab's memory.

const config = JSON.parse(document.getElementById("alphacut-config").textContent);
const $ = (id) => document.getElementById(id);

const MAX_ZOOM = 8; // 800 %
// What the queue may keep (original files and finished cutouts, encoded): beyond this
// a tab risks running out of memory, so new images are refused with a message. 2 GiB,
// less on a device with little memory (a quarter of it); the tests lower it by config.
const MAX_STORED_BYTES =
  config.limits?.queueBytes ?? Math.min(2 * 1024 ** 3, (navigator.deviceMemory || 8) * 1024 ** 3 / 4);
const MAX_ITEMS = 1000;
const SETTINGS_KEY = "alphacut.settings";

const ui = {
  dropzone: $("dropzone"),
  fileInput: $("file-input"),
  chooseButton: $("choose-button"),
  status: $("status"),
  statusText: $("status-text"),
  statusElapsed: $("status-elapsed"),
  statusTime: $("status-time"),
  progress: $("status-progress"),
  queuePanel: $("queue-panel"),
  queue: $("queue"),
  queueCount: $("queue-count"),
  downloadAll: $("download-all"),
  clearDone: $("clear-done"),
  viewer: $("viewer"),
  stage: $("stage"),
  before: $("before"),
  after: $("after"),
  afterBg: $("after-bg"),
  layerAfter: $("layer-after"),
  divider: $("divider"),
  split: $("split"),
  working: $("working"),
  workingText: $("working-text"),
  failed: $("failed"),
  failedText: $("failed-text"),
  zoomLevel: $("zoom-level"),
  backendBadge: $("backend-badge"),
  offlineBadge: $("offline-badge"),
  exportButton: $("export"),
  format: $("format"),
  formatNote: $("format-note"),
  edges: $("edges"),
  details: $("image-details"),
  backendSelect: $("backend-select"),
  bgColor: $("bg-color"),
};

const state = {
  model: null, // {worker, ready, backend}
  image: null, // {worker, ready}
  items: [], // the queue, in the order added
  nextId: 1,
  selected: null, // the item under review
  follow: true, // the viewer follows the newest result until the user picks one
  shown: { id: null, result: false }, // what the viewer's canvases hold
  width: 0,
  height: 0,
  view: { scale: 1, x: 0, y: 0 },
  split: 50,
  preparing: null, // the item being decoded and pre-processed
  ready: [], // prepared items waiting for the model
  inModel: null, // the item in the model
  finishing: 0, // items being refined and encoded
  busy: false, // an export or ZIP in progress
  batch: null, // {started, count}: timing of the current run of the queue
};

// --- settings: remembered in localStorage, never images -----------------------

function loadSettings() {
  try {
    return JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

let backendSetting = "auto"; // the user's choice (a ?backend= in the address is not saved)

function saveSettings() {
  const settings = {
    background: document.querySelector('input[name="bg"]:checked').value,
    color: ui.bgColor.value,
    format: ui.format.value,
    edges: ui.edges.value,
    webpLossy: $("webp-lossy").checked,
    backend: backendSetting,
  };
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    // Storage disabled or full: settings are a convenience, the page works without them.
  }
}

function applySettings(settings) {
  if (["checker", "white", "black", "custom"].includes(settings.background)) {
    document.querySelector(`input[name="bg"][value="${settings.background}"]`).checked = true;
  }
  if (/^#[0-9a-f]{6}$/i.test(settings.color || "")) ui.bgColor.value = settings.color;
  if (["png", "webp", "jpeg"].includes(settings.format)) ui.format.value = settings.format;
  if (["auto", "crisp", "soft"].includes(settings.edges)) ui.edges.value = settings.edges;
  $("webp-lossy").checked = settings.webpLossy === true;
  if (["auto", "webgpu", "wasm"].includes(settings.backend)) ui.backendSelect.value = backendSetting = settings.backend;
}

// --- status --------------------------------------------------------------------

let ticker = null;

// The live region (#status) only changes when something happens (an image done, an
// error); the seconds count and the progress bar sit outside it, so screen readers
// are not interrupted every second.
function setStatus(text, { error = false, time = "", progress = null } = {}) {
  clearInterval(ticker);
  ticker = null;
  if (ui.statusText.textContent !== text) ui.statusText.textContent = text;
  ui.statusTime.textContent = time;
  ui.statusElapsed.textContent = "";
  ui.status.classList.toggle("error", error);
  ui.status.dataset.state = error ? "error" : "ok";
  ui.progress.hidden = typeof progress !== "number";
  if (typeof progress === "number") ui.progress.value = progress;
  if (progress === true) {
    // Busy: a seconds count, not an indeterminate bar. That bar's animation repaints
    // 60 times a second, CPU the model needs on a small machine (measured: ~1-2 %).
    const started = performance.now();
    ticker = setInterval(() => {
      ui.statusElapsed.textContent = `${Math.floor((performance.now() - started) / 1000)} s`;
    }, 1000);
  }
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const megabytes = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;

// --- workers -------------------------------------------------------------------

function startWorker(role, backend, onProgress) {
  const worker = new Worker(config.worker, { type: "module", name: `alphacut-${role}` });
  const pending = new Map(); // message id -> {resolve, reject}
  let seq = 0;
  const handle = { worker, role, backend: null, pending };
  handle.ready = new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      const msg = event.data;
      if (msg.type === "ready") {
        handle.backend = msg;
        resolve(msg);
      } else if (msg.type === "progress") {
        onProgress?.(msg);
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
      const error = new Error(event.message || `the ${role} worker crashed (out of memory?)`);
      error.crashed = true;
      reject(error);
      for (const job of pending.values()) job.reject(error);
      pending.clear();
    };
  });
  handle.ready.catch(() => {});
  handle.call = (message, transfer = []) =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id }, transfer);
    });
  handle.post = (message) => worker.postMessage(message);
  handle.stop = () => {
    worker.terminate();
    for (const job of pending.values()) job.reject(new Error("worker restarted"));
    pending.clear();
  };
  worker.postMessage({ type: "init", config, role, backend });
  return handle;
}

function modelProgress(msg) {
  // The model's loading stages never replace an error on screen (a full queue, a refused
  // file): it stays until something the user did, or a result, speaks next.
  if (ui.status.dataset.state === "error") return;
  if (msg.total) {
    setStatus(`${msg.stage}…`, { progress: msg.done / msg.total });
  } else {
    setStatus(`${msg.stage}…`, { progress: true });
  }
}

function startModel(backend) {
  state.model?.stop();
  document.body.dataset.ready = "false";
  const handle = startWorker("model", backend, modelProgress);
  state.model = handle;
  handle.ready.then(
    (msg) => {
      if (state.model !== handle) return;
      ui.backendBadge.textContent = msg.detail;
      ui.backendBadge.classList.add("ok");
      document.body.dataset.ready = "true";
      document.body.dataset.backend = msg.backend;
      if (!working()) setStatus(`Ready: model loaded in ${seconds(msg.ms)}. Open images to start.`);
      watchOffline(msg.backend);
      pump();
    },
    async (error) => {
      if (state.model !== handle) return;
      if (error.fallback) {
        setStatus(`WebGPU failed (${error.message}); switching to the CPU.`, { progress: true });
        startModel("wasm");
        return;
      }
      setStatus(`Cannot load the model: ${error.message}`, { error: true });
    },
  );
  return handle;
}

function startImageWorker() {
  state.image?.stop();
  state.image = startWorker("image", "wasm");
  state.image.ready.catch((error) => setStatus(`Cannot start the image worker: ${error.message}`, { error: true }));
}

// --- the queue -----------------------------------------------------------------

const STATUS_WORDS = { waiting: "Waiting", working: "Working", done: "Done", failed: "Failed" };

function storedBytes() {
  let total = 0;
  for (const item of state.items) total += (item.blob?.size || 0) + (item.png?.size || 0) + (item.touchupBytes || 0);
  return total;
}

function working() {
  return state.items.some((item) => item.status === "waiting" || item.status === "working");
}

function addFiles(files) {
  const list = [...files];
  if (!list.length) return;
  if (!working()) {
    state.follow = true; // a new batch: show its results as they come
    state.batch = { started: performance.now(), count: 0, modelMs: [] };
  }
  let added = 0;
  const refused = [];
  for (const file of list) {
    const name = file.name || "pasted-image.png";
    const item = { id: state.nextId++, name, blob: file, status: "waiting", stage: "", error: "", png: null, thumb: null };
    if (file.type && !file.type.startsWith("image/")) {
      item.status = "failed";
      item.error = "not an image: open a PNG, JPEG or WebP file";
    } else if (state.items.length >= MAX_ITEMS || storedBytes() + file.size > MAX_STORED_BYTES) {
      refused.push(name);
      continue;
    }
    state.items.push(item);
    state.batch.count++;
    renderItem(item);
    added++;
    if (!state.selected) select(item, { byUser: false });
  }
  updateQueue();
  if (refused.length) {
    setStatus(
      `The queue is full: it holds ${megabytes(storedBytes())} of images and cutouts, about what this tab can keep` +
        ` (${megabytes(MAX_STORED_BYTES)}). ${refused.length} image${refused.length > 1 ? "s were" : " was"} not added` +
        ` (${refused.slice(0, 3).join(", ")}${refused.length > 3 ? ", …" : ""}): download the results` +
        " (Download all), then Clear finished, and add them again.",
      { error: true },
    );
  } else if (added > 1) {
    setStatus(`Added ${added} images to the queue.`, { progress: true });
  }
  pump();
}

// Pipeline: one image decoded and pre-processed ahead, one in the model, the ones
// before it refined and encoded; so the model never waits for the rest.
function pump() {
  if (!state.model || !state.image) return;
  if (!state.preparing && state.ready.length === 0) {
    const next = state.items.find((item) => item.status === "waiting" && !item.prepared && !item.claimed);
    if (next) prepareItem(next);
  }
  // At most two images wait for (or are in) refinement: with a fast GPU model the
  // full-resolution work could otherwise pile up in memory.
  if (!state.inModel && state.ready.length && state.finishing < 2 && document.body.dataset.ready === "true") {
    const item = state.ready.shift();
    inferItem(item);
  }
  if (!working() && state.batch?.count) finishBatch();
}

async function prepareItem(item) {
  state.preparing = item;
  item.claimed = true;
  item.begun ??= performance.now(); // its own time starts when it leaves the queue
  setItem(item, "working", "Reading the image");
  try {
    await state.image.ready;
    const msg = await state.image.call({ type: "prepare", blob: item.blob });
    item.input = msg.input;
    item.width = msg.width;
    item.height = msg.height;
    item.prepared = true;
    item.imageJob = msg.id;
    if (!item.thumb) setThumb(item, msg.thumb);
    setItem(item, "working", "Waiting for the model");
    state.ready.push(item);
  } catch (error) {
    fail(item, error);
    if (error.crashed) startImageWorker();
  } finally {
    state.preparing = null;
    pump();
  }
}

async function inferItem(item) {
  state.inModel = item;
  item.started = performance.now();
  setItem(item, "working", "Finding the subject");
  if (item === state.selected) showWorking(item);
  announce(`Cutting out ${item.name} (${position(item)}).`, { progress: true });
  const model = state.model;
  try {
    const input = item.input;
    item.input = null;
    const msg = await model.call({ type: "infer", input }, [input.buffer]);
    item.modelMs = msg.ms;
    state.batch?.modelMs.push(msg.ms);
    state.inModel = null;
    pump(); // the next image goes into the model now, while this one is refined
    await finishItem(item, msg);
  } catch (error) {
    if (state.inModel === item) state.inModel = null;
    const replaced = model !== state.model; // the backend was changed meanwhile
    if (replaced || error.fallback) {
      // Redo this image: its model input went to the old worker, so prepare it again.
      if (!replaced) {
        item.note = `Redone on the CPU: WebGPU failed (${error.message}).`;
        document.body.dataset.fallback = error.message; // read by the tests
        setStatus(`WebGPU failed (${error.message}); retrying on the CPU…`, { progress: true });
        startModel("wasm");
      }
      state.image.post({ type: "drop", id: item.imageJob });
      item.prepared = false;
      item.claimed = false;
      setItem(item, "waiting", "");
    } else {
      state.image.post({ type: "drop", id: item.imageJob });
      fail(item, error);
      if (error.crashed) startModel(ui.backendSelect.value);
    }
  } finally {
    pump();
  }
}

async function finishItem(item, maskMsg) {
  state.finishing++;
  setItem(item, "working", "Refining edges and colours");
  try {
    touchup?.keepModelMask(item, maskMsg.mask, maskMsg.dims); // before the mask goes to the worker
    item.edges = ui.edges.value; // the style this cutout (and its touch-ups) is refined with
    const msg = await state.image.call(
      { type: "finish", job: item.imageJob, mask: maskMsg.mask, dims: maskMsg.dims, edges: item.edges },
      [maskMsg.mask.buffer],
    );
    item.png = msg.png;
    item.review = msg.review;
    item.timings = { ...msg.timings, model: maskMsg.ms, inference: maskMsg.ms };
    item.total = performance.now() - item.begun;
    setThumb(item, msg.thumb);
    setItem(item, "done", "");
    const t = item.timings;
    const note = (flagged(item) ? ` ${reviewAdvice(item.review)}` : "") + (item.note ? ` ${item.note}` : "");
    const left = state.items.filter((i) => i.status === "waiting" || i.status === "working").length;
    announce(
      `${item.name} done in ${seconds(item.total)}: subject ${seconds(t.model)}, edges and colours ${seconds(t.refine)}.` +
        `${left ? ` ${left} to go.` : ""}${note}`,
      { progress: left ? true : null },
    );
    // Read by the tests and the benchmark.
    document.body.dataset.cutMs = String(Math.round(item.total));
    document.body.dataset.timings = JSON.stringify(t);
    document.body.dataset.result = String(item.id);
    if (state.follow || item === state.selected) select(item, { byUser: false });
    // Edges changed while this one was being refined: it follows the setting too.
    if (item === state.selected && item.edges !== ui.edges.value) restyleSelected();
  } catch (error) {
    fail(item, error);
    if (error.crashed) startImageWorker();
  } finally {
    state.finishing--;
    updateQueue();
    pump();
  }
}

function finishBatch() {
  const batch = state.batch;
  state.batch = null;
  const done = state.items.filter((i) => i.status === "done").length;
  const total = performance.now() - batch.started;
  // Read by the benchmark: the whole run, and the model's share of it.
  window.alphacutBatch = { ms: total, count: batch.count, modelMs: batch.modelMs };
  document.body.dataset.batchMs = String(Math.round(total));
  if (batch.count > 1) {
    const failed = state.items.filter((i) => i.status === "failed").length;
    announce(
      `Queue finished: ${done} cutout${done === 1 ? "" : "s"} ready${failed ? `, ${failed} failed` : ""}` +
        ` (last ${batch.count} in ${seconds(total)}).`,
      { error: false },
    );
  }
}

function position(item) {
  const batch = state.items.filter((i) => i.status !== "failed");
  return `${batch.indexOf(item) + 1} of ${batch.length}`;
}

function announce(text, options = {}) {
  setStatus(text, { time: backendLabel(), ...options });
}

function backendLabel() {
  return state.model?.backend ? state.model.backend.detail : "";
}

function fail(item, error) {
  item.prepared = false;
  item.input = null;
  setItem(item, "failed", "");
  item.error = error.message || String(error);
  renderItem(item);
  setStatus(`${item.name}: ${item.error}`, { error: true, time: backendLabel() });
  if (item === state.selected) showSelected();
}

function setItem(item, status, stage) {
  item.status = status;
  item.stage = stage;
  renderItem(item);
  updateQueue();
  if (item === state.selected && status === "working") ui.workingText.textContent = `${stage}…`;
}

function setThumb(item, blob) {
  if (item.thumb) URL.revokeObjectURL(item.thumb);
  item.thumb = URL.createObjectURL(blob);
  renderItem(item);
}

// A finished cutout the edge confidence flags for a person to check (review.js).
function flagged(item) {
  return item.status === "done" && Boolean(item.review?.needsReview);
}

// What a flagged cutout's review says (the engine's Confidence: see review.js).
function reviewAdvice(review) {
  if (review.empty) return "No subject was found: check the cutout.";
  if (review.fillsFrame) return "The subject fills the whole photo: check that the background was removed.";
  return "The model was unsure of part of the outline: check the edges at 200 %.";
}

function renderItem(item) {
  let li = item.li;
  if (!li) {
    li = document.createElement("li");
    li.setAttribute("role", "none");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "queue-item";
    button.setAttribute("role", "option");
    button.tabIndex = -1; // one Tab stop for the whole queue: see rovingQueue()
    button.dataset.id = String(item.id);
    button.innerHTML = '<span class="thumb"><img alt=""></span><span class="name"></span><span class="state"></span>';
    button.addEventListener("click", () => select(item, { byUser: true }));
    li.append(button);
    ui.queue.append(li);
    item.li = li;
  }
  const button = li.firstChild;
  const img = button.querySelector("img");
  if (item.thumb && img.getAttribute("src") !== item.thumb) img.src = item.thumb;
  button.querySelector(".name").textContent = item.name;
  const check = flagged(item);
  const text =
    item.status === "failed"
      ? `Failed: ${item.error}`
      : item.status === "working"
        ? `${item.stage || "Working"}…`
        : check
          ? "Done: check it"
          : STATUS_WORDS[item.status];
  button.querySelector(".state").textContent = text;
  button.title = check ? reviewAdvice(item.review) : "";
  button.dataset.status = item.status;
  button.dataset.review = item.status !== "done" || !item.review ? "" : check ? "check" : "ok";
  li.dataset.status = item.status;
  button.setAttribute("aria-selected", String(item === state.selected));
}

// The queue is one Tab stop (a listbox): the image under review, or the first one, takes
// Tab; the arrow keys, Home and End move between the images and show the one they reach.
function rovingQueue() {
  const stop = state.selected?.li ? state.selected : state.items[0];
  for (const item of state.items) if (item.li) item.li.firstChild.tabIndex = item === stop ? 0 : -1;
}

function onQueueKey(event) {
  const keys = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1, Home: -Infinity, End: Infinity };
  if (!(event.key in keys) || event.altKey || event.ctrlKey || event.metaKey) return;
  const shown = state.items.filter((i) => i.li);
  if (!shown.length) return;
  event.preventDefault();
  const at = shown.findIndex((i) => i.li.contains(document.activeElement));
  const step = keys[event.key];
  const next = Number.isFinite(step) ? Math.min(shown.length - 1, Math.max(0, (at < 0 ? 0 : at) + step)) : step < 0 ? 0 : shown.length - 1;
  const item = shown[next];
  if (item !== state.selected) select(item, { byUser: true });
  item.li.firstChild.focus();
}

function updateQueue() {
  const done = state.items.filter((i) => i.status === "done").length;
  const total = state.items.length;
  ui.queuePanel.hidden = total === 0;
  ui.queueCount.textContent = total ? `(${done} of ${total} done)` : "";
  ui.downloadAll.disabled = done === 0 || state.busy;
  ui.clearDone.disabled = !state.items.some((i) => i.status === "done" || i.status === "failed");
  document.body.dataset.queue = JSON.stringify(state.items.map((i) => i.status));
  if (total) ui.dropzone.classList.add("compact");
  rovingQueue();
}

function clearFinished() {
  const keep = [];
  for (const item of state.items) {
    if (item.status === "done" || item.status === "failed") {
      if (item.thumb) URL.revokeObjectURL(item.thumb);
      item.li?.remove();
      item.png = null;
      item.blob = null;
    } else keep.push(item);
  }
  state.items = keep;
  if (state.selected && !keep.includes(state.selected)) {
    state.selected = null;
    touchup?.select(null);
    state.shown = { id: null, result: false };
    ui.viewer.hidden = true;
    for (const canvas of [ui.before, ui.after]) canvas.width = canvas.height = 0;
  }
  updateQueue();
  setStatus(keep.length ? "Cleared the finished images." : "Cleared. Open more images to go on.");
}

// --- review: the selected item, large ---------------------------------------------

function select(item, { byUser }) {
  if (byUser) state.follow = false;
  const previous = state.selected;
  state.selected = item;
  if (previous && previous !== item) renderItem(previous);
  renderItem(item);
  rovingQueue();
  showSelected();
}

let showing = 0;

async function showSelected() {
  const item = state.selected;
  if (!item) return;
  touchup?.select(item);
  const token = ++showing;
  ui.viewer.hidden = false;
  const size = item.width ? `${item.name}: ${item.width} × ${item.height} px` : item.name;
  ui.details.textContent = flagged(item) ? `${size}. Check it: ${reviewAdvice(item.review)}` : size;
  if (item.status === "failed") {
    ui.failedText.textContent = `${item.name} could not be cut out: ${item.error}`;
    ui.failed.hidden = false;
    ui.working.hidden = true;
    ui.stage.classList.add("no-image");
    setExportEnabled();
    return;
  }
  ui.failed.hidden = true;
  ui.stage.classList.remove("no-image");
  try {
    if (state.shown.id !== item.id) {
      const bitmap = await createImageBitmap(item.blob, { imageOrientation: "from-image" });
      if (token !== showing) return bitmap.close();
      showBefore(bitmap);
      state.shown = { id: item.id, result: false };
    }
    if (item.status === "done" && !state.shown.result) {
      const bitmap = await createImageBitmap(item.png);
      if (token !== showing) return bitmap.close();
      showAfter(bitmap);
      state.shown.result = true;
    } else if (item.status !== "done") {
      showWorking(item);
    }
  } catch (error) {
    if (token === showing) {
      ui.failedText.textContent = `Cannot show ${item.name}: ${error.message}`;
      ui.failed.hidden = false;
    }
  }
  setExportEnabled();
}

// While an image waits or works, its After side would be empty: show the original
// in full with a "working" note instead, and no divider.
function showWorking(item) {
  if (state.shown.id !== item.id) return;
  ui.working.hidden = false;
  ui.workingText.textContent = item.status === "waiting" ? "Waiting for its turn…" : `${item.stage || "Working"}…`;
  ui.stage.classList.add("pending");
  applyView();
}

function showBefore(bitmap) {
  state.width = bitmap.width;
  state.height = bitmap.height;
  for (const canvas of [ui.before, ui.after]) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  for (const el of [ui.before, ui.after, ui.afterBg]) {
    el.style.width = `${bitmap.width}px`;
    el.style.height = `${bitmap.height}px`;
  }
  ui.before.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  ui.after.getContext("2d").clearRect(0, 0, ui.after.width, ui.after.height);
  clearListingView();
  ui.dropzone.classList.add("compact");
  sizeStage();
  fit();
}

function showAfter(bitmap) {
  const ctx = ui.after.getContext("2d");
  ctx.clearRect(0, 0, ui.after.width, ui.after.height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  ui.working.hidden = true;
  ui.stage.classList.remove("pending");
  state.split = 50;
  ui.split.value = "50";
  applyView();
  showListing();
}

// The stage takes the image's shape (up to most of the screen's height), so on a
// phone a landscape photo does not sit in a tall empty box.
function sizeStage() {
  if (!state.width) return;
  const width = ui.stage.clientWidth || ui.viewer.clientWidth;
  const max = Math.min(window.innerHeight * (window.innerWidth < 700 ? 0.6 : 0.7), 760);
  const box = contentBox();
  const scale = Math.min(1, width / box.w);
  const height = Math.max(180, Math.min(max, box.h * scale));
  ui.stage.style.height = `${Math.round(height)}px`;
}

function fitScale() {
  const w = ui.stage.clientWidth;
  const h = ui.stage.clientHeight;
  const box = contentBox();
  return Math.min(w / box.w, h / box.h, 1);
}

function applyView() {
  const { scale, x, y } = state.view;
  const transform = `translate(${x}px, ${y}px) scale(${scale})`;
  for (const el of [ui.before, ui.after, ui.afterBg]) el.style.transform = transform;
  const pixelated = scale >= 2;
  ui.before.classList.toggle("pixelated", pixelated);
  ui.after.classList.toggle("pixelated", pixelated);
  // Keep the checkerboard squares 16 screen pixels whatever the zoom.
  ui.afterBg.style.backgroundSize = `${16 / scale}px ${16 / scale}px`;
  ui.zoomLevel.textContent = `${Math.round(scale * 100)}%`;
  const w = ui.stage.clientWidth;
  const pending = ui.stage.classList.contains("pending");
  const px = pending ? w : (state.split / 100) * w;
  ui.layerAfter.style.clipPath = `inset(0 0 0 ${px}px)`;
  ui.divider.style.left = `${px}px`;
  ui.divider.hidden = pending;
  // One finger scrolls the page unless the image is zoomed in (then it pans).
  ui.stage.classList.toggle("zoomed", state.width > 0 && scale > fitScale() * 1.001);
  applyListingView();
}

function fit() {
  const w = ui.stage.clientWidth;
  const h = ui.stage.clientHeight;
  if (!state.width || !w || !h) return;
  const scale = fitScale();
  const box = contentBox();
  state.view = { scale, x: (w - box.w * scale) / 2 - box.x * scale, y: (h - box.h * scale) / 2 - box.y * scale };
  applyView();
}

function zoomTo(scale, cx, cy) {
  if (!state.width) return;
  const w = ui.stage.clientWidth;
  const h = ui.stage.clientHeight;
  const min = Math.min(0.05, fitScale());
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
  $("zoom-100").addEventListener("click", () => zoomTo(actualSize()));
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
  // Two fingers: pinch to zoom. The page must not scroll or zoom itself meanwhile.
  ui.stage.addEventListener(
    "touchstart",
    (event) => {
      if (event.touches.length >= 2) event.preventDefault();
    },
    { passive: false },
  );
  const pointers = new Map(); // pointerId -> {x, y}
  let drag = null;
  let pinch = null;
  const pinchState = () => {
    const [a, b] = [...pointers.values()];
    return { distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, cx: (a.x + b.x) / 2, cy: (a.y + b.y) / 2 };
  };
  ui.stage.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (pointers.size === 2) {
      drag = null;
      pinch = { start: pinchState(), scale: state.view.scale };
      for (const id of pointers.keys()) ui.stage.setPointerCapture(id);
      return;
    }
    const onDivider = event.target.closest("#divider");
    // A finger on the image at fit scrolls the page (touch-action: pan-y): no pan then.
    if (!onDivider && event.pointerType === "touch" && !ui.stage.classList.contains("zoomed")) return;
    drag = { mode: onDivider ? "split" : "pan", x: event.clientX, y: event.clientY, view: { ...state.view } };
    ui.stage.setPointerCapture(event.pointerId);
    ui.stage.classList.toggle("panning", drag.mode === "pan");
  });
  ui.stage.addEventListener("pointermove", (event) => {
    if (pointers.has(event.pointerId)) pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (pinch && pointers.size >= 2) {
      const now = pinchState();
      const rect = ui.stage.getBoundingClientRect();
      zoomTo(pinch.scale * (now.distance / pinch.start.distance), now.cx - rect.left, now.cy - rect.top);
      return;
    }
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
  const end = (event) => {
    pointers.delete(event.pointerId);
    if (pointers.size < 2) pinch = null;
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
    else if (event.key === "1") zoomTo(actualSize());
    else if (moves[event.key]) {
      state.view.x += moves[event.key][0];
      state.view.y += moves[event.key][1];
      applyView();
    } else return;
    event.preventDefault();
  });
  let lastWidth = 0;
  new ResizeObserver(() => {
    if (!state.width) return;
    const width = ui.stage.clientWidth;
    if (width !== lastWidth) {
      lastWidth = width;
      sizeStage();
      fit();
    } else applyView();
  }).observe(ui.stage);

  for (const radio of document.querySelectorAll('input[name="bg"]')) {
    radio.addEventListener("change", () => {
      setBackground();
      saveSettings();
    });
  }
  ui.bgColor.addEventListener("input", () => {
    document.querySelector('input[name="bg"][value="custom"]').checked = true;
    setBackground();
    saveSettings();
  });
}

// The preview background lives on its own element behind the cutout: Chromium does
// not repaint the CSS background of a canvas that has been drawn into.
function setBackground() {
  const value = document.querySelector('input[name="bg"]:checked').value;
  ui.afterBg.classList.toggle("bg-checker", value === "checker");
  ui.afterBg.style.backgroundColor = { checker: "", white: "#ffffff", black: "#000000", custom: ui.bgColor.value }[value];
  document.body.dataset.background = value;
}

// --- export ----------------------------------------------------------------------

function setExportEnabled() {
  const item = state.selected;
  ui.exportButton.disabled = !(item && item.status === "done" && item.png) || state.busy;
  ui.exportButton.textContent = `Download ${ui.format.value.toUpperCase()}`;
  ui.formatNote.hidden = ui.format.value !== "webp";
  updateListingExport();
  ui.downloadAll.disabled = state.busy || !state.items.some((i) => i.status === "done");
  touchup?.update();
}

function outputName(name, ext) {
  if (ext === "jpeg") ext = "jpg";
  const base = (name || "image").replace(/\.[^./\\]+$/, "") || "image";
  return `${base}-cutout.${ext}`;
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function encoded(item, format) {
  if (listingOptions(format) || format === "jpeg") return composeFor(item, format);
  if (format === "png") return { blob: item.png, ms: 0 };
  await state.image.ready;
  return state.image.call({ type: "webp", png: item.png, quality: exportQuality("webp") });
}

// The quality to encode `format` at, as the engine's Options.quality: JPEG always has one
// (95 by default); WebP is lossless (null) unless "Lossy" is ticked.
function exportQuality(format) {
  const quality = listingUi?.quality() ?? 95;
  if (format === "webp") return $("webp-lossy").checked ? quality : null;
  return quality;
}

async function exportSelected() {
  const item = state.selected;
  if (!item?.png || state.busy) return;
  const format = ui.format.value;
  const started = performance.now();
  state.busy = true;
  setExportEnabled();
  try {
    const { blob } = await encoded(item, format);
    const name = outputName(item.name, format);
    save(blob, name);
    document.body.dataset.exportMs = String(Math.round(performance.now() - started));
    document.body.dataset.exported = String(item.id) + format;
    setStatus(`Saved ${name} (${(blob.size / 1024).toFixed(0)} KB).`, { time: backendLabel() });
  } catch (error) {
    setStatus(`Export failed: ${error.message}`, { error: true });
  } finally {
    state.busy = false;
    setExportEnabled();
  }
}

let zipModule = null;

async function downloadAll() {
  const done = state.items.filter((i) => i.status === "done" && i.png);
  if (!done.length || state.busy) return;
  const format = ui.format.value;
  const started = performance.now();
  state.busy = true;
  setExportEnabled();
  try {
    zipModule ??= await import(config.zip);
    const used = new Set();
    const files = [];
    for (const [n, item] of done.entries()) {
      if (listingOptions(format)) setStatus(`Composing ${n + 1} of ${done.length}…`, { progress: n / done.length });
      else if (format !== "png") setStatus(`Encoding ${n + 1} of ${done.length} as ${format === "jpeg" ? "JPEG" : "WebP"}…`, { progress: n / done.length });
      const { blob } = await encoded(item, format);
      let name = outputName(item.name, format);
      for (let k = 2; used.has(name.toLowerCase()); k++) name = outputName(`${item.name.replace(/\.[^.]+$/, "")}-${k}`, format);
      used.add(name.toLowerCase());
      files.push({ name, input: blob, lastModified: new Date() });
    }
    // Store-only ZIP, streamed into a Blob of this tab: nothing leaves the browser.
    const zip = await zipModule.downloadZip(files).blob();
    const name = `alphacut-cutouts-${done.length}.zip`;
    save(new Blob([zip], { type: "application/zip" }), name);
    const ms = performance.now() - started;
    document.body.dataset.zipMs = String(Math.round(ms));
    document.body.dataset.zipped = String(done.length);
    setStatus(`Saved ${name}: ${done.length} cutout${done.length > 1 ? "s" : ""}, ${megabytes(zip.size)}, made in ${seconds(ms)}.`, {
      time: backendLabel(),
    });
  } catch (error) {
    setStatus(`Download all failed: ${error.message}`, { error: true });
  } finally {
    state.busy = false;
    setExportEnabled();
  }
}

// --- input: picker, drag and drop, paste -------------------------------------

function setupInput() {
  ui.fileInput.addEventListener("change", () => {
    addFiles(ui.fileInput.files);
    ui.fileInput.value = "";
  });
  ui.chooseButton.addEventListener("click", () => ui.fileInput.click());
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
    addFiles(event.dataTransfer?.files || []);
  });
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.items || [])]
      .filter((i) => i.kind === "file" && i.type.startsWith("image/"))
      .map((i) => i.getAsFile())
      .filter(Boolean)
      .map((f) => (f.name && f.name !== "image.png" ? f : new File([f], "pasted-image.png", { type: f.type })));
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  ui.exportButton.addEventListener("click", exportSelected);
  ui.downloadAll.addEventListener("click", downloadAll);
  ui.clearDone.addEventListener("click", clearFinished);
  ui.queue.addEventListener("keydown", onQueueKey);
  ui.format.addEventListener("change", () => {
    setExportEnabled();
    saveSettings();
  });
  ui.edges.addEventListener("change", () => {
    saveSettings(); // for the photos cut out from now on
    restyleSelected(); // and the finished cutout on screen
  });
  $("webp-lossy").addEventListener("change", () => {
    updateListingExport();
    saveSettings();
  });
  ui.backendSelect.addEventListener("change", () => {
    backendSetting = ui.backendSelect.value;
    saveSettings();
    setStatus("Switching backend…", { progress: true });
    startModel(ui.backendSelect.value);
  });
}

// --- listing photo ---------------------------------------------------------------
// With listing options (a preset, a crop, a canvas, a background, a shadow), the after
// view and every download are the listing photo, composed in the image worker by the
// engine's own graphs (static/listing.js has the layout and the controls). The after
// view shows it in the photo's place: where its crop box lies in the photo, scaled by
// the layout, so the divider compares the same subject.

let listingUi = null; // the controls (listing.js), once loaded
const listingView = {
  canvas: $("listing-after"),
  geometry: null, // where the listing canvas lies, in photo pixels: {x, y, w, h, sx, sy}
  shown: "", // what the canvas holds (item, cutout, options)
  busy: false,
  again: false,
};
const pngKeys = new WeakMap(); // cutout PNG -> a number naming it in the worker
let nextPngKey = 1;

function pngKey(png) {
  if (!pngKeys.has(png)) pngKeys.set(png, nextPngKey++);
  return String(pngKeys.get(png));
}

async function setupListing() {
  try {
    const listing = await import(config.listing.module);
    listingUi = listing.setupControls({
      presets: config.listing.presets || [],
      setFormat: (format) => {
        if (![...ui.format.options].some((o) => o.value === format)) return;
        ui.format.value = format;
        setExportEnabled();
        saveSettings();
      },
      onChange: () => showListing(),
    });
    watchTouchup();
  } catch (error) {
    $("listing-panel").hidden = true;
    console.warn("alphacut: listing photos unavailable:", error);
  }
}

// The listing options in effect (null: the plain cutout). JPEG has no transparency: a
// transparent listing photo is composed on white then, as the engine does.
function listingOptions(format = ui.format.value) {
  const options = listingUi?.options() ?? null;
  if (options && format === "jpeg" && !options.background) options.background = "#ffffff";
  return options;
}

function listingWanted(item) {
  const options = listingOptions();
  const bg = options?.background === "image" ? listingUi.backgroundImage()?.key : null;
  return options ? JSON.stringify([item.id, pngKey(item.png), options, bg]) : "";
}

// The cutout (or its listing photo) of `item` as `output`: "bitmap", "png", "webp", "jpeg".
async function composeFor(item, output) {
  await state.image.ready;
  const options = listingOptions(output === "bitmap" ? ui.format.value : output);
  const bg = options?.background === "image" ? listingUi.backgroundImage() : null;
  return state.image.call({
    type: "compose",
    key: pngKey(item.png),
    png: item.png,
    photo: options?.background === "blur" ? item.blob : null,
    bg,
    options,
    output,
    quality: exportQuality(output),
  });
}

// The touch-up edits the cutout itself: while it is open the after view is the cutout.
const listingPaused = () => ui.stage.classList.contains("touchup");
const listingGeometry = () => (listingPaused() ? null : listingView.geometry);

// The area the viewer fits: the listing canvas when one is shown, else the photo.
function contentBox() {
  const g = listingGeometry();
  return g ? { x: g.x, y: g.y, w: g.w, h: g.h } : { x: 0, y: 0, w: state.width, h: state.height };
}

// "Actual size": one pixel of what is downloaded per screen pixel.
function actualSize() {
  const g = listingGeometry();
  return g ? 1 / g.sx : 1;
}

// The checkerboard behind the after view covers what it shows; the viewer fits it.
function refitListing() {
  const g = listingGeometry();
  const canvas = listingView.canvas;
  ui.afterBg.style.width = `${g ? canvas.width : state.width}px`;
  ui.afterBg.style.height = `${g ? canvas.height : state.height}px`;
  sizeStage();
  fit();
}

function applyListingView() {
  const g = listingGeometry();
  if (!g) return;
  const { scale, x, y } = state.view;
  const k = scale * g.sx;
  const transform = `translate(${x + g.x * scale}px, ${y + g.y * scale}px) scale(${k}, ${scale * g.sy})`;
  listingView.canvas.style.transform = transform;
  ui.afterBg.style.transform = transform;
  ui.afterBg.style.backgroundSize = `${16 / k}px ${16 / k}px`;
  listingView.canvas.classList.toggle("pixelated", k >= 2);
  ui.zoomLevel.textContent = `${Math.round(k * 100)}%`;
}

function clearListingView() {
  listingView.shown = "";
  if (!listingView.geometry) return;
  listingView.geometry = null;
  ui.stage.classList.remove("listing");
  listingView.canvas.width = listingView.canvas.height = 0;
  ui.afterBg.style.width = `${state.width}px`;
  ui.afterBg.style.height = `${state.height}px`;
}

// The touch-up opening or closing: fit the cutout, or show (and recompose) the listing photo.
function watchTouchup() {
  let paused = listingPaused();
  new MutationObserver(() => {
    if (paused === listingPaused()) return;
    paused = listingPaused();
    if (state.width) refitListing();
    if (!paused) showListing();
  }).observe(ui.stage, { attributes: true, attributeFilter: ["class"] });
}

// Shows the listing photo of the item under review (again when a setting changed).
async function showListing() {
  const item = state.selected;
  if (!listingUi || !item || item.status !== "done" || !item.png || state.shown.id !== item.id) return;
  if (listingPaused()) return;
  const want = listingWanted(item);
  if (!want) {
    if (listingView.geometry) {
      clearListingView();
      refitListing();
    }
    return;
  }
  if (want === listingView.shown) return;
  if (listingView.busy) {
    listingView.again = true;
    return;
  }
  listingView.busy = true;
  try {
    const msg = await composeFor(item, "bitmap");
    const stillWanted = state.selected === item && state.shown.id === item.id && want === listingWanted(item) &&
      !listingPaused();
    if (!stillWanted) {
      msg.bitmap.close();
      return;
    }
    drawListing(msg);
    listingView.shown = want;
    if (msg.warnings?.length) setStatus(`${item.name}: ${msg.warnings.join("; ")}.`, { time: backendLabel() });
    // Read by the tests.
    document.body.dataset.composed = want;
    document.body.dataset.composedSize = `${msg.width}x${msg.height}`;
  } catch (error) {
    setStatus(`The listing photo of ${item.name} failed: ${error.message}`, { error: true });
  } finally {
    listingView.busy = false;
    if (listingView.again) {
      listingView.again = false;
      showListing();
    }
  }
}

function drawListing({ bitmap, width, height, layout }) {
  const canvas = listingView.canvas;
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  const [x0, y0, x1, y1] = layout.box;
  const [tw, th] = layout.size;
  const [ox, oy] = layout.offset;
  const sx = (x1 - x0) / tw;
  const sy = (y1 - y0) / th;
  const g = { x: x0 - ox * sx, y: y0 - oy * sy, w: width * sx, h: height * sy, sx, sy };
  const old = listingView.geometry;
  listingView.geometry = g;
  ui.stage.classList.add("listing");
  if (!old || ["x", "y", "w", "h"].some((k) => Math.abs(old[k] - g[k]) > 1e-6)) refitListing();
  else applyView();
}

function updateListingExport() {
  const jpeg = ui.format.value === "jpeg";
  const webp = ui.format.value === "webp";
  $("webp-lossy-label").hidden = !webp;
  $("quality-label").hidden = !(jpeg || (webp && $("webp-lossy").checked));
  $("jpeg-note").hidden = !jpeg;
  showListing(); // a transparent listing photo shows white for JPEG
}

// --- touch-up ----------------------------------------------------------------------
// Erase and restore brushes on a finished cutout's mask, refined again after each stroke
// (static/touchup.js). The edited cutout becomes the item's result.

let touchup = null; // its hooks, once loaded

// Settings > Edges changed: the finished cutout on screen is refined again with the new
// style from its kept mask (touchup.js restyle: no model run); other finished cutouts keep
// theirs until they are shown and the setting is changed again.
async function restyleSelected() {
  const item = state.selected;
  const edges = ui.edges.value;
  if (!touchup || item?.status !== "done" || item.edges === edges) return;
  setStatus(`Refining the edges of ${item.name} again (${edges})…`, { progress: true });
  try {
    if (!(await touchup.restyle(item, edges))) {
      setStatus(`Edges ${edges}: for the photos you open from now on.`); // nothing kept to refine again
      return;
    }
    if (item.edges !== edges) return; // changed again meanwhile
    setStatus(`${item.name}: edges ${edges}.`);
    document.body.dataset.restyled = `${item.id}:${edges}`; // read by the tests
  } catch (error) {
    setStatus(`Could not refine the edges of ${item.name} again: ${error.message}`, { error: true });
  }
}

async function setupTouchup() {
  try {
    const module = await import(config.touchup);
    touchup = module.setupTouchup({ state, ui, setStatus, setThumb, save, changed: () => setExportEnabled() });
  } catch (error) {
    $("touchup-toggle").hidden = true;
    console.warn("alphacut: touch-up unavailable:", error);
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
    config.deflate,
    config.review,
    config.zip,
    config.graphs.preprocess,
    config.graphs.apply,
    ...Object.values(config.graphs.edges), // one coefficient graph per edge style
    rt.bundle,
    rt.mjs,
    rt.wasm,
    config.runtime.wasm.wasm,
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

// --- start ---------------------------------------------------------------------

async function main() {
  // Touch screens without a mouse get touch wording (no "drop", no Ctrl+V).
  const touch = matchMedia("(pointer: coarse)").matches || (navigator.maxTouchPoints > 0 && matchMedia("(hover: none)").matches);
  document.documentElement.classList.toggle("touch", touch);
  applySettings(loadSettings());
  setupViewer();
  setupInput();
  setBackground();
  setExportEnabled();
  const wanted = new URLSearchParams(location.search).get("backend");
  if (["auto", "webgpu", "wasm"].includes(wanted)) ui.backendSelect.value = wanted;
  setStatus("Starting…", { progress: true });
  await registerServiceWorker();
  startImageWorker();
  startModel(ui.backendSelect.value);
  await setupListing(); // after the first status too
  await setupTouchup(); // after the first status: a file opened meanwhile keeps its message
}

main();
