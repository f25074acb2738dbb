// alphacut touch-up: fix a cutout's mask by hand, in the page.
//
// When the model gets a part wrong (the log under the lemur, a gap between legs), Touch
// up turns the After view into a mask editor: Erase and Restore brushes with a size and
// a hardness, a mode that follows the photo's edges, undo and redo, and a reset to the
// model's mask. A stroke shows at once; then the image worker refines the edited mask
// with the same post-processing graph as a cutout (worker.js, "touch-up"), so the edges
// and colours are re-estimated for it, and the result replaces the item's cutout: the
// download, the thumbnail and Download all carry the edits. Download mask saves the
// edited mask as a grayscale PNG, which `alphacut cut photo.jpg --start-mask FILE` (and
// `remove_background(..., start_mask=...)`) refines into the same cutout.
//
// The edited mask lives on a grid with the photo's aspect ratio, at most EDIT_SIDE pixels
// on the long side (the refinement works at 640 px anyway), one byte a pixel, starting as
// the model's mask resampled onto it. Each item keeps the model's mask (1 MiB) and, once
// touched up, its edited mask and a bounded history; those bytes count in the queue's
// memory budget (item.touchupBytes). The photo's and the cutout's full-resolution pixels
// are held only while the touch-up is open.

const EDIT_SIDE = 1024; // long side of the edited mask's grid, at most
const MAX_HISTORY = 30; // undo steps kept per image
const MAX_HISTORY_BYTES = 64 * 1024 ** 2; // ... and at most this much of them (mask changes and results)
// Follow the photo's edges: the brush keeps its full strength on colours within this
// distance (RGB, 0..441) of the colour under its centre where the stroke began, and
// fades to nothing at twice the distance.
const EDGE_TOLERANCE = 64;

let page = null; // what app.js lends: {state, ui, setStatus, setThumb, save, changed}
const ui = {};
let open = null; // the open touch-up: {item, width, height, ctx, photo, after, base, strength}
let stroke = null; // the stroke being painted

// --- the model's mask, kept per item --------------------------------------------------

// The model's mask (Float32Array, dims [1, 1, h, w]) as bytes, before it goes to the worker.
function keepModelMask(item, mask, dims) {
  const model = new Uint8ClampedArray(mask.length); // rounds half to even and clamps, like numpy's rint + clip
  for (let i = 0; i < mask.length; i++) model[i] = mask[i] * 255;
  item.touchup = { model, modelWidth: dims[3], modelHeight: dims[2], mask: null, history: [], pos: 0, base: null,
    version: 0, shown: 0, busy: false, styles: null, style: null };
  countBytes(item);
}

// The grid of the edited mask: the photo's own size up to EDIT_SIDE, else scaled down to
// it, unless rounding would change the aspect ratio by more than 0.5 % (a thin strip).
function gridSize(width, height) {
  const long = Math.max(width, height);
  if (long <= EDIT_SIDE) return [width, height];
  const k = EDIT_SIDE / long;
  const w = Math.max(1, Math.round(width * k));
  const h = Math.max(1, Math.round(height * k));
  return Math.abs(w / h / (width / height) - 1) <= 0.005 ? [w, h] : [width, height];
}

// The model's mask on the edit grid: a separable triangle filter, widened when
// shrinking (antialiased, like the graphs' Resize).
function modelOnGrid(t) {
  return resample(t.model, t.modelWidth, t.modelHeight, t.mw, t.mh);
}

function taps(n, m) {
  const scale = n / m;
  const support = Math.max(1, scale);
  const out = [];
  for (let i = 0; i < m; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(n, Math.ceil(centre + support));
    const weights = [];
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / support));
      weights.push(w);
      sum += w;
    }
    out.push({ lo, weights: weights.map((w) => w / (sum || 1)) });
  }
  return out;
}

function resample(src, sw, sh, dw, dh) {
  const across = taps(sw, dw);
  const down = taps(sh, dh);
  const rows = new Float32Array(dw * sh);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < dw; x++) {
      const { lo, weights } = across[x];
      let v = 0;
      for (let k = 0; k < weights.length; k++) v += src[y * sw + lo + k] * weights[k];
      rows[y * dw + x] = v;
    }
  }
  const out = new Uint8ClampedArray(dw * dh);
  for (let y = 0; y < dh; y++) {
    const { lo, weights } = down[y];
    for (let x = 0; x < dw; x++) {
      let v = 0;
      for (let k = 0; k < weights.length; k++) v += rows[(lo + k) * dw + x] * weights[k];
      out[y * dw + x] = v;
    }
  }
  return out;
}

// What an item's touch-up holds beyond its current cutout (app.js counts item.png).
function countBytes(item) {
  const t = item.touchup;
  if (!t) return;
  let bytes = t.model.length + (t.mask?.length || 0);
  const pngs = new Set();
  for (const entry of [t.base, ...t.history]) {
    if (!entry) continue;
    bytes += (entry.before?.length || 0) + (entry.after?.length || 0);
    if (entry.png) pngs.add(entry.png);
  }
  for (const png of Object.values(t.styles || {})) pngs.add(png);
  pngs.delete(item.png);
  for (const png of pngs) bytes += png.size;
  item.touchupBytes = bytes;
  return bytes;
}

// --- opening and closing ---------------------------------------------------------------

function canOpen(item) {
  return Boolean(item && item.status === "done" && item.png && item.touchup && item.blob);
}

function update(item = page.state.selected) {
  ui.toggle.disabled = !open && !canOpen(item);
  ui.toggle.setAttribute("aria-pressed", open ? "true" : "false");
  ui.tools.hidden = !open;
  if (!open) return;
  const t = open.item.touchup;
  ui.undo.disabled = t.pos === 0;
  ui.redo.disabled = t.pos === t.history.length;
  ui.reset.disabled = t.pos === 0 && t.base.png === t.modelPng;
  const tool = currentTool();
  page.ui.stage.classList.toggle("touchup-paint", tool !== "move");
  ui.cursor.hidden = ui.cursor.hidden || tool === "move";
}

function setSplit(value) {
  // Through the slider's own handler: app.js redraws the view.
  page.ui.split.value = String(value);
  page.ui.split.dispatchEvent(new Event("input"));
}

async function start() {
  const item = page.state.selected;
  if (open || !canOpen(item)) return;
  const t = item.touchup;
  if (!t.mask) {
    [t.mw, t.mh] = gridSize(item.width, item.height);
    t.mask = modelOnGrid(t);
    t.modelPng = item.png; // nothing is edited yet: the model's cutout
    t.base = { png: item.png };
    t.styles = null; // results by edge style are kept for untouched cutouts only (restyle)
    t.shown = t.version;
    countBytes(item);
  }
  const width = page.ui.before.width;
  const height = page.ui.before.height;
  if (width !== item.width || height !== item.height) return; // the viewer shows another image
  const ctx = page.ui.after.getContext("2d", { willReadFrequently: true });
  const photo = page.ui.before.getContext("2d").getImageData(0, 0, width, height).data;
  open = { item, width, height, ctx, photo, after: null, base: null, strength: null };
  page.state.follow = false; // the viewer stays on this image while others finish
  page.ui.stage.classList.add("touchup");
  setSplit(0); // the After view over the whole stage
  update(item);
  await draw(item, item.png);
  setFlag();
  page.setStatus(
    "Touch-up: paint on the cutout to erase or restore; the edges and colours are worked out again after each stroke.",
  );
}

function close() {
  if (!open) return;
  if (stroke) cancelStroke();
  const item = open.item;
  open = null;
  page.ui.stage.classList.remove("touchup", "touchup-paint");
  ui.cursor.hidden = true;
  setSplit(50);
  page.state.image?.post({ type: "touchup-drop" });
  update(page.state.selected);
  setFlag();
  // The opening's instructions would stay in the status line: say what became of the edits.
  const t = item.touchup;
  const edited = t && !(t.pos === 0 && t.base.png === t.modelPng);
  page.setStatus(
    edited
      ? `Touch-up closed: ${item.name} keeps its edits (Download and Download all carry them).`
      : "Touch-up closed.",
  );
  // The viewer shows the item's cutout again (a result still on its way shows when it comes).
  if (item.png) draw(item, item.png);
}

// app.js calls this when another item is selected (or none).
function select(item) {
  if (open && open.item !== item) close();
  update(item);
}

// --- drawing results -----------------------------------------------------------------

// Show a cutout on the After canvas when the viewer shows its item (and, while the touch-up
// is open, take its pixels for the next strokes).
async function draw(item, png) {
  const bitmap = await createImageBitmap(png);
  const canvas = page.ui.after;
  const shown = page.state.selected === item && page.state.shown.id === item.id && page.state.shown.result;
  if (!shown || stroke || canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    bitmap.close();
    return;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  if (open?.item === item) {
    open.after = ctx.getImageData(0, 0, canvas.width, canvas.height);
    open.base = new Uint8ClampedArray(open.after.data);
  }
}

async function thumbnailOf(png) {
  const source = await createImageBitmap(png);
  const scale = Math.min(1, 192 / Math.max(source.width, source.height));
  const w = Math.max(1, Math.round(source.width * scale));
  const h = Math.max(1, Math.round(source.height * scale));
  const canvas = new OffscreenCanvas(w, h);
  canvas.getContext("2d").drawImage(source, 0, 0, w, h);
  source.close();
  return canvas.convertToBlob({ type: "image/png" });
}

// The cutout of the item's current mask becomes its result (download, thumbnail, ZIP).
async function useResult(item, png, version) {
  const t = item.touchup;
  item.png = png;
  countBytes(item);
  page.changed(item);
  const thumb = await thumbnailOf(png);
  if (t.version !== version) return; // a newer mask's result follows
  page.setThumb(item, thumb);
  await draw(item, png);
  if (t.version === version) t.shown = version;
  update();
  setFlag();
}

// Read by the tests: "off", "busy" (a result on its way), "idle" (the result shown is the
// mask's) or "failed" (the last refinement failed; the status line says why).
function setFlag() {
  const t = open?.item.touchup;
  const busy = t && (t.busy || stroke || (t.shown !== t.version && !t.failed));
  document.body.dataset.touchup = !t ? "off" : busy ? "busy" : t.failed ? "failed" : "idle";
  ui.state.textContent = !t ? "" : document.body.dataset.touchup === "busy" ? "Working out the edges…" : "";
}

// --- history ---------------------------------------------------------------------------

// The history entry whose result is the current mask's (base: nothing undone past it).
function owner(t) {
  return t.pos === 0 ? t.base : t.history[t.pos - 1];
}

function writeRect(t, entry, values) {
  for (let y = 0; y < entry.h; y++) {
    t.mask.set(values.subarray(y * entry.w, (y + 1) * entry.w), (entry.y + y) * t.mw + entry.x);
  }
}

function readRect(mask, mw, x, y, w, h) {
  const out = new Uint8ClampedArray(w * h);
  for (let r = 0; r < h; r++) out.set(mask.subarray((y + r) * mw + x, (y + r) * mw + x + w), r * w);
  return out;
}

function push(item, entry) {
  const t = item.touchup;
  t.history.length = t.pos; // a new edit drops what was undone
  t.history.push(entry);
  t.pos++;
  // Bounded: the oldest steps go first (they cannot be undone any more).
  while (t.history.length > 1 && (t.history.length > MAX_HISTORY || countBytes(item) > MAX_HISTORY_BYTES)) {
    const oldest = t.history.shift();
    t.base = { png: oldest.png };
    t.pos--;
  }
  countBytes(item);
}

function stateChanged(item) {
  const t = item.touchup;
  t.version++;
  t.failed = false;
  update();
  setFlag();
  const png = owner(t).png;
  return png ? useResult(item, png, t.version) : refine(item);
}

function undo() {
  if (!open) return;
  if (stroke) cancelStroke();
  const t = open.item.touchup;
  if (t.pos === 0) return;
  const entry = t.history[t.pos - 1];
  writeRect(t, entry, entry.before);
  t.pos--;
  stateChanged(open.item);
}

function redo() {
  if (!open) return;
  if (stroke) cancelStroke();
  const t = open.item.touchup;
  if (t.pos === t.history.length) return;
  const entry = t.history[t.pos];
  writeRect(t, entry, entry.after);
  t.pos++;
  stateChanged(open.item);
}

// Back to the model's mask and cutout, as one more step (it can be undone).
function reset() {
  if (!open) return;
  if (stroke) cancelStroke();
  const item = open.item;
  const t = item.touchup;
  const model = modelOnGrid(t);
  const entry = { x: 0, y: 0, w: t.mw, h: t.mh, before: new Uint8ClampedArray(t.mask), after: model, png: t.modelPng };
  t.mask.set(model);
  push(item, entry);
  stateChanged(item);
}

// --- refining the edited mask in the image worker ---------------------------------------

async function refine(item) {
  const t = item.touchup;
  if (t.busy) return; // the loop below takes the newest mask when the running one is back
  t.busy = true;
  setFlag();
  try {
    for (;;) {
      const entry = owner(t);
      const version = t.version;
      if (entry.png) {
        if (t.shown !== version) await useResult(item, entry.png, version);
        break;
      }
      if (!item.blob) break; // cleared from the queue meanwhile
      const png = await workOut(item, t.mask, t.mw, t.mh, item.edges);
      entry.png = png;
      countBytes(item);
      if (t.version === version) await useResult(item, png, version);
    }
  } catch (error) {
    t.failed = true;
    page.setStatus(`Touch-up failed: ${error.message}. Undo, or try the stroke again.`, { error: true });
  } finally {
    t.busy = false;
    setFlag();
  }
}

// The image worker refines an 8-bit mask (the edited one, or the model's) of the item's
// photo with an edge style: the cutout's PNG. The worker keeps the decoded photo for the
// next stroke only while the item's touch-up is open.
async function workOut(item, bytes, width, height, edges) {
  const mask = new Float32Array(bytes.length);
  for (let i = 0; i < mask.length; i++) mask[i] = bytes[i] / 255;
  const image = page.state.image;
  await image.ready;
  try {
    const msg = await image.call(
      { type: "touchup", key: item.id, blob: item.blob, mask, maskWidth: width, maskHeight: height, edges },
      [mask.buffer],
    );
    return msg.png;
  } finally {
    if (open?.item !== item) image.post({ type: "touchup-drop" });
  }
}

// --- another edge style for a finished cutout ------------------------------------------

// Settings > Edges changed while this finished cutout is shown: its mask is refined again
// with the new style (no model run), and the result replaces its cutout. An untouched
// cutout is refined from the model's mask as kept here (8 bits, as Download mask saves it:
// `alphacut cut --start-mask` gives the same), and each style's result is kept, so going
// back to a style gives the very bytes it had. An edited one is refined from its edited
// mask; the results its history kept were of the old style, so they are worked out again
// when undo or redo reaches them. Returns false when there is nothing to do.
async function restyle(item, edges) {
  const t = item.touchup;
  if (!t || !item.blob || item.edges === edges) return false;
  if (open?.item === item && stroke) cancelStroke();
  const before = item.edges;
  item.edges = edges;
  if (!t.mask) {
    // Untouched: each style's result is kept (t.style: the style of the cutout it has).
    const styles = (t.styles ??= { [(t.style ??= before)]: item.png });
    const png = (styles[edges] ??= await workOut(item, t.model, t.modelWidth, t.modelHeight, edges));
    if (item.edges !== edges) return true; // another style came meanwhile: its result follows
    if (!t.mask) {
      t.style = edges;
      item.png = png;
      countBytes(item);
      page.changed(item);
      page.setThumb(item, await thumbnailOf(png));
      await draw(item, png);
      return true;
    }
    // A touch-up was opened meanwhile: refine its mask with the new style (below).
  }
  for (const entry of [t.base, ...t.history]) if (entry) entry.png = null;
  t.modelPng = null;
  await stateChanged(item); // refines the current mask with item.edges
  return true;
}

async function downloadMask() {
  const item = open?.item;
  if (!item) return;
  const t = item.touchup;
  await page.state.image.ready;
  const { png } = await page.state.image.call({ type: "touchup-mask", mask: new Uint8Array(t.mask), width: t.mw,
    height: t.mh });
  const name = `${(item.name || "image").replace(/\.[^./\\]+$/, "") || "image"}-mask.png`;
  page.save(png, name);
  document.body.dataset.maskSaved = name;
  page.setStatus(`Saved ${name} (${t.mw} × ${t.mh}): alphacut cut ${item.name} --start-mask ${name} refines it into` +
    " the same cutout.");
}

// --- brushes ---------------------------------------------------------------------------

function currentTool() {
  return document.querySelector('input[name="touchup-tool"]:checked')?.value || "erase";
}

// Brush size: a diameter in screen pixels (the cursor's), so it feels the same at any zoom.
function brushRadius() {
  return Number(ui.size.value) / 2 / page.state.view.scale;
}

function toImage(event) {
  const rect = page.ui.stage.getBoundingClientRect();
  const { scale, x, y } = page.state.view;
  return { x: (event.clientX - rect.left - x) / scale, y: (event.clientY - rect.top - y) / scale };
}

// Strength at a distance d (0 centre .. 1 rim) for a hardness h: full inside h, then a
// smooth fall to 0 at the rim.
function falloff(d, h) {
  if (d >= 1) return 0;
  if (d <= h) return 1;
  const t = (d - h) / (1 - h);
  return 1 - t * t * (3 - 2 * t);
}

function edgeWeight(photo, i, ref) {
  const dr = photo[i] - ref[0];
  const dg = photo[i + 1] - ref[1];
  const db = photo[i + 2] - ref[2];
  const distance = Math.sqrt(dr * dr + dg * dg + db * db);
  if (distance <= EDGE_TOLERANCE) return 1;
  return Math.max(0, 2 - distance / EDGE_TOLERANCE);
}

function beginStroke(event) {
  const item = open.item;
  const t = item.touchup;
  const { width, height } = open;
  const p = toImage(event);
  const cx = Math.min(width - 1, Math.max(0, Math.floor(p.x)));
  const cy = Math.min(height - 1, Math.max(0, Math.floor(p.y)));
  const i = 4 * (cy * width + cx);
  open.strength ??= new Uint8Array(width * height);
  stroke = {
    pointerId: event.pointerId,
    erase: currentTool() === "erase",
    hardness: Number(ui.hardness.value) / 100,
    ref: ui.edges.checked ? [open.photo[i], open.photo[i + 1], open.photo[i + 2]] : null,
    last: p,
    before: new Uint8ClampedArray(t.mask),
    maskStrength: new Uint8Array(t.mask.length),
    box: null, // changed pixels of the After view
    maskBox: null, // ... and of the mask
  };
  setFlag();
  dab(p);
}

const grow = (box, x0, y0, x1, y1) =>
  box ? [Math.min(box[0], x0), Math.min(box[1], y0), Math.max(box[2], x1), Math.max(box[3], y1)] : [x0, y0, x1, y1];

// Paint along the segment from the last point, one dab every fifth of a radius.
function strokeTo(p) {
  const r = brushRadius();
  const step = Math.max(0.5, r / 5);
  const { last } = stroke;
  const n = Math.max(1, Math.ceil(Math.hypot(p.x - last.x, p.y - last.y) / step));
  for (let k = 1; k <= n; k++) dab({ x: last.x + ((p.x - last.x) * k) / n, y: last.y + ((p.y - last.y) * k) / n });
  stroke.last = p;
}

// One dab: the stroke's strength at each pixel is the most any of its dabs gave, so a
// stroke reads the same whatever its speed; the pixel is worked out from its value before
// the stroke (the After view's from open.base, the mask's from stroke.before).
function dab(p) {
  const r = brushRadius();
  const { width, height, photo, after, base, strength } = open;
  if (!after) return;
  const { erase, hardness, ref } = stroke;
  const data = after.data;
  const x0 = Math.max(0, Math.floor(p.x - r));
  const y0 = Math.max(0, Math.floor(p.y - r));
  const x1 = Math.min(width, Math.ceil(p.x + r + 1));
  const y1 = Math.min(height, Math.ceil(p.y + r + 1));
  if (x0 >= x1 || y0 >= y1) return;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const j = y * width + x;
      const i = 4 * j;
      let s = falloff(Math.hypot(x + 0.5 - p.x, y + 0.5 - p.y) / r, hardness);
      if (s > 0 && ref) s *= edgeWeight(photo, i, ref);
      const level = Math.round(s * 255);
      if (level <= strength[j]) continue;
      strength[j] = level;
      const k = level / 255;
      const a0 = base[i + 3];
      if (erase) {
        data[i + 3] = a0 * (1 - k);
      } else {
        const a = a0 + (255 - a0) * k;
        for (let c = 0; c < 3; c++) data[i + c] = a > 0 ? (base[i + c] * a0 + photo[i + c] * (a - a0)) / a : photo[i + c];
        data[i + 3] = a;
      }
    }
  }
  stroke.box = grow(stroke.box, x0, y0, x1, y1);
  open.ctx.putImageData(after, 0, 0, x0, y0, x1 - x0, y1 - y0);
  dabMask(p, r);
}

// The same dab on the edited mask's grid (the photo's colour from its nearest pixel).
function dabMask(p, r) {
  const t = open.item.touchup;
  const { mw, mh, mask } = t;
  const kx = mw / open.width;
  const ky = mh / open.height;
  const cx = p.x * kx;
  const cy = p.y * ky;
  const rm = Math.max(0.75, r * kx);
  const { erase, hardness, ref, before, maskStrength } = stroke;
  const x0 = Math.max(0, Math.floor(cx - rm));
  const y0 = Math.max(0, Math.floor(cy - rm));
  const x1 = Math.min(mw, Math.ceil(cx + rm + 1));
  const y1 = Math.min(mh, Math.ceil(cy + rm + 1));
  if (x0 >= x1 || y0 >= y1) return;
  for (let y = y0; y < y1; y++) {
    const py = Math.min(open.height - 1, Math.floor((y + 0.5) / ky));
    for (let x = x0; x < x1; x++) {
      const j = y * mw + x;
      let s = falloff(Math.hypot(x + 0.5 - cx, y + 0.5 - cy) / rm, hardness);
      if (s > 0 && ref) {
        const px = Math.min(open.width - 1, Math.floor((x + 0.5) / kx));
        s *= edgeWeight(open.photo, 4 * (py * open.width + px), ref);
      }
      const level = Math.round(s * 255);
      if (level <= maskStrength[j]) continue;
      maskStrength[j] = level;
      const k = level / 255;
      mask[j] = erase ? before[j] * (1 - k) : before[j] + (255 - before[j]) * k;
    }
  }
  stroke.maskBox = grow(stroke.maskBox, x0, y0, x1, y1);
}

// The stroke's changes to the After view are kept (open.base takes them); its strengths cleared.
function settleView(keep) {
  const { box } = stroke;
  if (!box || !open.after) return;
  const [x0, y0, x1, y1] = box;
  const { width, after, base, strength } = open;
  for (let y = y0; y < y1; y++) {
    strength.fill(0, y * width + x0, y * width + x1);
    const from = 4 * (y * width + x0);
    const to = 4 * (y * width + x1);
    if (keep) base.set(after.data.subarray(from, to), from);
    else after.data.set(base.subarray(from, to), from);
  }
  if (!keep) open.ctx.putImageData(after, 0, 0, x0, y0, x1 - x0, y1 - y0);
}

function endStroke() {
  const item = open.item;
  const t = item.touchup;
  const { maskBox, before } = stroke;
  settleView(true);
  stroke = null;
  if (!maskBox) return setFlag();
  const [x0, y0, x1, y1] = maskBox;
  const entry = {
    x: x0, y: y0, w: x1 - x0, h: y1 - y0,
    before: readRect(before, t.mw, x0, y0, x1 - x0, y1 - y0),
    after: readRect(t.mask, t.mw, x0, y0, x1 - x0, y1 - y0),
    png: null,
  };
  if (entry.before.every((v, i) => v === entry.after[i])) return setFlag(); // nothing changed
  push(item, entry);
  stateChanged(item);
}

function cancelStroke() {
  const t = open.item.touchup;
  settleView(false);
  t.mask.set(stroke.before);
  stroke = null;
  setFlag();
}

// --- pointer, keyboard and controls ------------------------------------------------------

function moveCursor(event) {
  if (!open || currentTool() === "move") return;
  const rect = page.ui.stage.getBoundingClientRect();
  const size = Number(ui.size.value);
  ui.cursor.style.width = ui.cursor.style.height = `${size}px`;
  ui.cursor.style.transform = `translate(${event.clientX - rect.left - size / 2}px, ${event.clientY - rect.top - size / 2}px)`;
  ui.cursor.hidden = event.pointerType === "touch";
}

function setupPointer(stage) {
  // Capture phase: while a brush is chosen, the viewer's own pan and pinch (app.js) do not
  // see the strokes; the Move tool, the wheel and the keys still pan and zoom.
  const painting = (event) => open && currentTool() !== "move" && !event.target.closest?.("#divider");
  stage.addEventListener(
    "pointerdown",
    (event) => {
      if (!painting(event)) return;
      event.stopImmediatePropagation();
      event.preventDefault();
      if (event.pointerType === "mouse" && event.button !== 0) return;
      if (stroke) {
        // A second finger: a pinch, not a stroke. Take the stroke back.
        if (event.pointerId !== stroke.pointerId) cancelStroke();
        return;
      }
      stage.setPointerCapture(event.pointerId);
      beginStroke(event);
    },
    { capture: true },
  );
  stage.addEventListener(
    "pointermove",
    (event) => {
      moveCursor(event);
      if (!stroke || event.pointerId !== stroke.pointerId) return;
      event.stopImmediatePropagation();
      const events = event.getCoalescedEvents?.() || [];
      for (const e of events.length ? events : [event]) strokeTo(toImage(e));
    },
    { capture: true },
  );
  const finish = (cancelled) => (event) => {
    if (!stroke || event.pointerId !== stroke.pointerId) return;
    event.stopImmediatePropagation();
    if (cancelled) cancelStroke();
    else endStroke();
  };
  stage.addEventListener("pointerup", finish(false), { capture: true });
  stage.addEventListener("pointercancel", finish(true), { capture: true });
  stage.addEventListener("pointerleave", () => {
    ui.cursor.hidden = true;
  });
}

function setupKeys() {
  document.addEventListener("keydown", (event) => {
    if (!open) return;
    if (event.key === "Escape") {
      // Esc takes back a stroke in progress; with none, it closes the touch-up (the edits stay).
      if (stroke) cancelStroke();
      else {
        close();
        ui.toggle.focus();
      }
      event.preventDefault();
      return;
    }
    if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
    const key = event.key.toLowerCase();
    if (event.target.closest?.('input[type="text"], input[type="number"], textarea')) return; // their own undo
    if (key === "z" && !event.shiftKey) undo();
    else if ((key === "z" && event.shiftKey) || key === "y") redo();
    else return;
    event.preventDefault();
  });
}

function setupControls() {
  for (const id of ["toggle", "tools", "cursor", "size", "hardness", "edges", "undo", "redo", "reset", "mask", "state"]) {
    ui[id] = document.getElementById(`touchup-${id}`);
  }
  ui.sizeValue = document.getElementById("touchup-size-value");
  ui.hardnessValue = document.getElementById("touchup-hardness-value");
  ui.toggle.addEventListener("click", () => (open ? close() : start()));
  ui.undo.addEventListener("click", undo);
  ui.redo.addEventListener("click", redo);
  ui.reset.addEventListener("click", reset);
  ui.mask.addEventListener("click", () =>
    downloadMask().catch((error) => page.setStatus(`Download mask failed: ${error.message}`, { error: true })),
  );
  const showValues = () => {
    ui.sizeValue.textContent = `${ui.size.value} px`;
    ui.hardnessValue.textContent = `${ui.hardness.value} %`;
  };
  ui.size.addEventListener("input", showValues);
  ui.hardness.addEventListener("input", showValues);
  showValues();
  for (const radio of document.querySelectorAll('input[name="touchup-tool"]')) {
    radio.addEventListener("change", () => {
      ui.cursor.hidden = true;
      update();
    });
  }
}

// Called once by app.js with what the touch-up needs from the page; returns the hooks
// app.js calls: keepModelMask (a cutout's model mask, as it finishes), select (another
// item is shown), restyle (Settings > Edges changed for the cutout shown) and update (the
// item's state changed).
export function setupTouchup(hooks) {
  page = hooks;
  setupControls();
  setupPointer(page.ui.stage);
  setupKeys();
  update();
  setFlag();
  return { keepModelMask, select, restyle, update: () => update() };
}
