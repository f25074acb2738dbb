// alphacut listing photos in the page: the layout and the listing controls.
//
// The layout is an exact port of alphacut.listing.layout: integers and exact fractions
// only (BigInt), so the page and the Python engine put the subject on the same pixels
// (tests/data/listing_layouts.json holds the shared test vectors). The pixels are made
// by the listing graphs, the same ONNX graphs the engine runs (worker.js).
//
// The image worker imports this module for the layout and the style vector; the page
// for the controls (setupControls). Nothing here touches the document until
// setupControls is called, so the worker can import it.

// --- exact integer arithmetic (BigInt), as alphacut.listing writes it ------------------

const FULL = 10000n; // 100 % in hundredths of a percent

function floorDiv(a, b) {
  const q = a / b; // BigInt division truncates toward zero
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
const ceilDiv = (n, d) => -floorDiv(-n, d);
// n / d rounded half towards +infinity (d > 0).
const halfUp = (n, d) => floorDiv(2n * n + d, 2n * d);
const bmax = (a, b) => (a > b ? a : b);
const bmin = (a, b) => (a < b ? a : b);

// A percent in hundredths of a percent: floor(p * 100 + 0.5) on the IEEE double, as in
// Python (alphacut.listing.hundredths).
export function hundredths(percent) {
  return Math.floor(Number(percent) * 100 + 0.5);
}

// --- options ------------------------------------------------------------------------

// The listing fields of alphacut.options.Options, with the engine's defaults. The page
// passes options under these names (background "image" stands for the image the user
// opened in the page; the engine's background_image is a path).
export const DEFAULTS = Object.freeze({
  crop: false,
  margin: "0",
  canvas: null,
  fill: null,
  align: "center",
  upscale: false,
  background: null,
  shadow: "none",
  shadow_opacity: 0.35,
  shadow_blur: 2.0,
  shadow_offset: "0,1.5",
});

export const DEFAULT_QUALITY = 95;

// True when the options change the cutout (else the export is the plain cutout).
export function composes(o) {
  if (!o) return false;
  return Boolean(o.crop || o.canvas || (o.background && o.background !== "transparent") || (o.shadow && o.shadow !== "none"));
}

// A colour alone (no crop, canvas or shadow) flattens the cutout as the engine's encoder
// does (no graph): its [r, g, b], else null.
export function flattenColor(o) {
  if (!o || o.crop || o.canvas || (o.shadow && o.shadow !== "none")) return null;
  const bg = o.background;
  if (!bg || bg === "transparent" || bg === "blur" || bg === "image") return null;
  return parseColor(bg);
}

// The graph's background kind: none (transparent), a colour, the photo blurred, or an image.
function backgroundKind(o) {
  const bg = o.background;
  if (!bg || bg === "transparent") return "transparent";
  if (bg === "blur" || bg === "image") return bg;
  return "color";
}

// The listing graph for these options: its key in the page's config (listing.graphs),
// the engine's graph_name without "listing-".
export function graphName(o) {
  return `${backgroundKind(o)}-${o.shadow || "none"}`;
}

// --- layout ---------------------------------------------------------------------------

const ALPHA_FLOOR = 26; // alpha (0..255) from which a pixel counts as subject (about 10 %)
const CELL_GRID = 512; // the speck grid has at most this many cells on the longer side
const SPECK_SHARE = 100; // components under 1/SPECK_SHARE of the largest one are specks
const MAX_CANVAS_SIDE = 20000;
export const NO_SUBJECT = "no subject found: kept the whole photo";
// Said when the cap at the subject's own pixels leaves it under 4/5 of the size the fill asks for.
const smallSubject = (w, h, cw, ch) =>
  `the subject keeps its own ${w}x${h} px on the ${cw}x${ch} canvas, well under the fill asked:` +
  " allow upscaling (upscale, --upscale) or choose a smaller canvas";

// The subject's inclusive box [x0, y0, x1, y1] in `alpha` (uint8, width x height), faint
// specks ignored: cells of ceil(max(W, H) / 512) pixels, occupied where a pixel has
// alpha >= 26, 8-connected components of them; those under ceil(largest / 100) cells are
// dropped. null when no pixel reaches 26.
export function subjectBox(alpha, width, height) {
  const cell = Math.ceil(Math.max(width, height) / CELL_GRID);
  const gw = Math.ceil(width / cell);
  const gh = Math.ceil(height / cell);
  const cells = gw * gh;
  // Per cell: the inclusive bounds of its pixels >= ALPHA_FLOOR (maxX = -1: none).
  const minX = new Int32Array(cells).fill(width);
  const minY = new Int32Array(cells).fill(height);
  const maxX = new Int32Array(cells).fill(-1);
  const maxY = new Int32Array(cells).fill(-1);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const crow = Math.floor(y / cell) * gw;
    for (let x = 0; x < width; x++) {
      if (alpha[row + x] < ALPHA_FLOOR) continue;
      const c = crow + Math.floor(x / cell);
      if (x < minX[c]) minX[c] = x;
      if (x > maxX[c]) maxX[c] = x;
      if (y < minY[c]) minY[c] = y;
      if (y > maxY[c]) maxY[c] = y;
    }
  }
  const label = new Int32Array(cells).fill(-1);
  const sizes = [];
  const stack = new Int32Array(cells);
  for (let start = 0; start < cells; start++) {
    if (maxX[start] < 0 || label[start] >= 0) continue;
    const id = sizes.length;
    let count = 0;
    let top = 0;
    stack[top++] = start;
    label[start] = id;
    while (top) {
      const c = stack[--top];
      count++;
      const cx = c % gw;
      const cy = (c - cx) / gw;
      for (let ny = Math.max(0, cy - 1); ny <= Math.min(gh - 1, cy + 1); ny++) {
        for (let nx = Math.max(0, cx - 1); nx <= Math.min(gw - 1, cx + 1); nx++) {
          const n = ny * gw + nx;
          if (maxX[n] >= 0 && label[n] < 0) {
            label[n] = id;
            stack[top++] = n;
          }
        }
      }
    }
    sizes.push(count);
  }
  if (!sizes.length) return null;
  let largest = 0;
  for (const size of sizes) largest = Math.max(largest, size);
  const least = Math.max(1, Math.ceil(largest / SPECK_SHARE));
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let c = 0; c < cells; c++) {
    if (label[c] < 0 || sizes[label[c]] < least) continue;
    x0 = Math.min(x0, minX[c]);
    y0 = Math.min(y0, minY[c]);
    x1 = Math.max(x1, maxX[c]);
    y1 = Math.max(y1, maxY[c]);
  }
  return [x0, y0, x1, y1];
}

const isDigits = (text) => /^[0-9]+$/.test(text);
const isFloat = (text) => /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text);

// "2000x2000" -> {size}; "4:5" -> {aspect}; "photo" -> {photo: true}.
export function parseCanvas(text) {
  const value = String(text).trim().toLowerCase();
  if (value === "photo") return { photo: true };
  for (const [sep, kind] of [["x", "size"], [":", "aspect"]]) {
    const at = value.indexOf(sep);
    if (at < 0) continue;
    const [a, b] = [value.slice(0, at).trim(), value.slice(at + 1).trim()];
    if (!isDigits(a) || !isDigits(b)) throw new Error(`cannot read canvas ${text}: write whole numbers`);
    const [x, y] = [Number(a), Number(b)];
    if (!(x >= 1 && x <= MAX_CANVAS_SIDE && y >= 1 && y <= MAX_CANVAS_SIDE)) {
      throw new Error(`canvas ${text} is out of range: each number must be 1..${MAX_CANVAS_SIDE}`);
    }
    return { [kind]: [x, y] };
  }
  throw new Error(`cannot read canvas ${text}: write a size like 2000x2000, an aspect like 4:5, or photo`);
}

// "5%" -> {value: 500, percent: true} (hundredths); "40px" or "40" -> {value: 40}.
export function parseMargin(text) {
  const value = String(text).trim().toLowerCase();
  if (value.endsWith("%")) {
    const body = value.slice(0, -1);
    if (!isFloat(body)) throw new Error(`cannot read margin ${text}: write a percent like 5% or pixels like 40px`);
    const percent = Number(body);
    if (!(percent >= 0 && percent <= 1000)) throw new Error(`margin ${text} is out of range: use 0% to 1000%`);
    return { value: hundredths(percent), percent: true };
  }
  const digits = value.replace(/px$/, "").trim();
  if (!isDigits(digits) || Number(digits) > 100000) throw new Error(`cannot read margin ${text}: write pixels like 40px`);
  return { value: Number(digits), percent: false };
}

// "0,1.5" (x,y percent) -> hundredths [0, 150].
export function parseOffset(text) {
  const parts = String(text).split(",");
  if (parts.length !== 2 || !parts.every(isFloat)) throw new Error(`cannot read shadow offset ${text}: write x,y like 0,1.5`);
  const [x, y] = parts.map(Number);
  if (!(Math.abs(x) <= 100 && Math.abs(y) <= 100)) throw new Error(`shadow offset ${text} is out of range: each must be -100..100`);
  return [hundredths(x), hundredths(y)];
}

// Where the cutout goes (alphacut.listing.layout, exactly): {box, size, canvas, offset,
// subject, shadowBlur, shadowOffset, warnings}. box: the crop box in the photo, half-open
// (may reach past it); size: the box scaled; canvas: the output's size; offset: where the
// scaled box's top-left corner goes; shadow blur and offset in canvas pixels.
// `alpha`: the cutout's alpha (uint8, width x height); `subjectOf` (optional) returns its
// subject box, so a caller can keep the box it found for the same alpha.
export function layout(alpha, width, height, options, subjectOf = () => subjectBox(alpha, width, height)) {
  const o = { ...DEFAULTS, ...options };
  const fill = o.fill === null || o.fill === undefined ? Number(FULL) : hundredths(o.fill);
  if (!(fill >= 1 && fill <= Number(FULL))) throw new Error(`fill must be in (0, 100] percent, got ${o.fill}`);
  const margin = parseMargin(o.margin ?? "0");
  const canvas = o.canvas === null || o.canvas === undefined ? null : parseCanvas(o.canvas);
  const shadow = o.shadow || "none";
  const shadowBlur = BigInt(hundredths(o.shadow_blur));
  const shadowOffset = parseOffset(o.shadow_offset).map(BigInt);
  const warnings = [];
  let subject = null;
  if (o.crop || shadow === "contact") {
    subject = subjectOf();
    if (!subject) {
      if (o.crop) warnings.push(NO_SUBJECT);
      subject = [0, 0, width - 1, height - 1];
    }
  }
  let box;
  if (o.crop) {
    const [x0, y0, x1, y1] = subject;
    const longer = BigInt(Math.max(x1 + 1 - x0, y1 + 1 - y0));
    const m = margin.percent ? Number(halfUp(BigInt(margin.value) * longer, FULL)) : margin.value;
    box = [x0 - m, y0 - m, x1 + 1 + m, y1 + 1 + m];
  } else {
    box = [0, 0, width, height];
  }
  const bw = BigInt(box[2] - box[0]);
  const bh = BigInt(box[3] - box[1]);
  const f = BigInt(fill);
  let cw, ch;
  if (!canvas) [cw, ch] = [bw, bh];
  else if (canvas.size) [cw, ch] = canvas.size.map(BigInt);
  else {
    const [a, b] = (canvas.photo ? [width, height] : canvas.aspect).map(BigInt);
    const n = FULL * bmax(bw * b, bh * a);
    cw = bmax(1n, ceilDiv(n, f * b));
    ch = bmax(1n, ceilDiv(n, f * a));
  }
  let tw, th;
  if (!canvas) [tw, th] = [bw, bh];
  else {
    // scale = min(f cw / (FULL bw), f ch / (FULL bh)), capped at 1 unless upscaling.
    let [num, den] = [f * cw, FULL * bw];
    if (f * ch * den < num * FULL * bh) [num, den] = [f * ch, FULL * bh];
    if (!o.upscale && num > den) {
      if (num * 4n > den * 5n) warnings.push(smallSubject(bw, bh, cw, ch));
      [num, den] = [1n, 1n];
    }
    tw = bmax(1n, halfUp(bw * num, den));
    th = bmax(1n, halfUp(bh * num, den));
  }
  const ox = bmax(0n, floorDiv(cw - tw, 2n));
  const oy =
    o.align === "bottom"
      ? bmax(0n, ch - th - floorDiv(ch * (FULL - f), 2n * FULL))
      : bmax(0n, floorDiv(ch - th, 2n));
  const longer = bmax(tw, th);
  const blur = halfUp(shadowBlur * longer, FULL);
  let offset;
  if (shadow === "contact") {
    const rows = BigInt(subject[3] + 1 - box[1]); // from the box's top to the subject's bottom edge
    offset = [0n, halfUp(rows * th, bh) - th];
  } else {
    offset = [halfUp(shadowOffset[0] * longer, FULL), halfUp(shadowOffset[1] * longer, FULL)];
  }
  return {
    box,
    size: [Number(tw), Number(th)],
    canvas: [Number(cw), Number(ch)],
    offset: [Number(ox), Number(oy)],
    subject,
    shadowBlur: Number(blur),
    shadowOffset: offset.map(Number),
    warnings,
  };
}

// The listing graph's `layout` input: x0, y0, x1, y1, tw, th, CW, CH, ox, oy.
export function layoutVector(lay) {
  return BigInt64Array.from([...lay.box, ...lay.size, ...lay.canvas, ...lay.offset].map((v) => BigInt(v)));
}

const NAMED = { white: [255, 255, 255], black: [0, 0, 0] };

export function parseColor(text) {
  const t = String(text).trim().toLowerCase();
  if (NAMED[t]) return NAMED[t];
  let m = /^#([0-9a-f]{6})$/.exec(t);
  if (m) return [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16));
  m = /^#([0-9a-f]{3})$/.exec(t);
  if (m) return [...m[1]].map((c) => parseInt(c + c, 16));
  throw new Error(`cannot read colour ${text}: use #rrggbb`);
}

// The listing graph's `style` input: background r, g, b (0..255), background alpha,
// shadow opacity, shadow blur (px), shadow dx, dy (px). Percentages are of the placed
// subject's longer side.
export function styleVector(options, lay) {
  const o = { ...DEFAULTS, ...options };
  const kind = backgroundKind(o);
  const [r, g, b] = kind === "color" ? parseColor(o.background) : [0, 0, 0];
  const opaque = kind === "color" ? 1 : 0; // informative: the graph's kind decides
  const shadow = o.shadow && o.shadow !== "none";
  return Float32Array.from([
    r, g, b, opaque,
    shadow ? o.shadow_opacity : 0,
    lay.shadowBlur,
    lay.shadowOffset[0],
    lay.shadowOffset[1],
  ]);
}

// --- the page's listing controls ------------------------------------------------------

const STORAGE_KEY = "alphacut.listing";
const CANVAS_CHOICES = ["none", "size", "1:1", "4:5", "16:9", "photo"];

// The form's values: what the controls show, and what localStorage keeps (never the
// background image: it lives in this tab's memory only).
const FORM_DEFAULTS = Object.freeze({
  crop: false,
  margin: 0,
  marginUnit: "%",
  canvas: "none",
  width: 2000,
  height: 2000,
  fill: 100,
  align: "center",
  upscale: false,
  background: "transparent",
  color: "#ffffff",
  shadow: "none",
  shadowOpacity: 35,
  shadowBlur: 2,
  shadowX: 0,
  shadowY: 1.5,
  quality: DEFAULT_QUALITY,
});

const num = (text) => (text === "" || text === null || text === undefined ? NaN : Number(text));
const clamp = (value, lo, hi, fallback) => (Number.isFinite(value) ? Math.min(hi, Math.max(lo, value)) : fallback);
// Percent shown from a fraction without float noise (0.35 -> 35).
const percent = (fraction) => Math.round(fraction * 1e6) / 1e4;

// Form values -> options (the engine's field names).
export function formToOptions(form) {
  const margin = form.margin > 0 ? `${form.margin}${form.marginUnit === "px" ? "px" : "%"}` : "0";
  let canvas = null;
  if (form.canvas === "size") canvas = `${form.width}x${form.height}`;
  else if (form.canvas !== "none") canvas = form.canvas;
  let background = null;
  if (form.background === "color") background = form.color.toLowerCase();
  else if (form.background === "blur" || form.background === "image") background = form.background;
  // What needs a crop or a canvas is left at its default without one (as Options asks).
  return {
    crop: form.crop,
    margin: form.crop ? margin : "0",
    canvas,
    fill: canvas && form.fill < 100 ? form.fill : null,
    align: canvas ? form.align : "center",
    upscale: canvas ? form.upscale : false,
    background,
    shadow: form.shadow,
    shadow_opacity: form.shadowOpacity / 100,
    shadow_blur: form.shadowBlur,
    shadow_offset: `${form.shadowX},${form.shadowY}`,
  };
}

// Options (a preset's values) -> form values; what the options leave out is the default.
export function optionsToForm(options, base = FORM_DEFAULTS) {
  const o = { ...DEFAULTS, ...options };
  const form = { ...base };
  form.crop = Boolean(o.crop);
  const margin = String(o.margin ?? "0").trim().toLowerCase();
  if (margin.endsWith("%")) {
    form.margin = Number(margin.slice(0, -1));
    form.marginUnit = "%";
  } else {
    form.margin = Number(margin.replace(/px$/, ""));
    form.marginUnit = form.margin ? "px" : "%";
  }
  const canvas = o.canvas ? String(o.canvas).trim().toLowerCase() : "none";
  const size = /^(\d+)\s*x\s*(\d+)$/.exec(canvas);
  if (size) {
    form.canvas = "size";
    form.width = Number(size[1]);
    form.height = Number(size[2]);
  } else {
    form.canvas = canvas.replace(/\s+/g, "");
  }
  form.fill = o.fill === null || o.fill === undefined ? 100 : Number(o.fill);
  form.align = o.align === "bottom" ? "bottom" : "center";
  form.upscale = Boolean(o.upscale);
  const bg = o.background ? String(o.background).trim().toLowerCase() : "transparent";
  if (bg === "transparent" || bg === "blur" || bg === "image") form.background = bg;
  else {
    form.background = "color";
    const [r, g, b] = parseColor(bg);
    form.color = `#${[r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
  }
  form.shadow = ["drop", "contact"].includes(o.shadow) ? o.shadow : "none";
  form.shadowOpacity = percent(Number(o.shadow_opacity));
  form.shadowBlur = Number(o.shadow_blur);
  const [x, y] = String(o.shadow_offset).split(",").map(Number);
  form.shadowX = x || 0;
  form.shadowY = y || 0;
  if (typeof options.quality === "number") form.quality = options.quality;
  return form;
}

// What decides the look (the preset match ignores the quality and the export format).
function look(form) {
  return JSON.stringify(formToOptions(form));
}

function summary(form, presetLabel, imageName) {
  if (presetLabel) return presetLabel;
  const o = formToOptions(form);
  if (!composes(o)) return "None (transparent cutout)";
  const parts = [];
  if (o.crop) parts.push(o.margin !== "0" ? `crop, margin ${o.margin}` : "crop");
  if (o.canvas) parts.push(`${o.canvas.replace("x", " × ")}${o.fill ? `, fill ${o.fill} %` : ""}${o.align === "bottom" ? ", bottom" : ""}`);
  parts.push(form.background === "color" ? form.color : form.background === "image" ? (imageName ? `image ${imageName}` : "no image chosen yet") : form.background);
  if (o.shadow !== "none") parts.push(`${o.shadow} shadow`);
  return `Custom: ${parts.join(", ")}`;
}

// Wires the listing controls. `presets`: [{name, label, options}] from the page's config;
// `setFormat(format)`: sets the page's export format (a preset may name one);
// `onChange({immediate})`: the look changed (recompose). Returns the controller.
export function setupControls({ presets = [], setFormat = () => {}, onChange = () => {} } = {}) {
  const $ = (id) => document.getElementById(id);
  const el = {
    panel: $("listing-panel"),
    summary: $("listing-summary"),
    preset: $("listing-preset"),
    rule: $("listing-rule"),
    crop: $("listing-crop"),
    margin: $("listing-margin"),
    marginUnit: $("listing-margin-unit"),
    canvas: $("listing-canvas"),
    sizeRow: $("listing-size"),
    width: $("listing-width"),
    height: $("listing-height"),
    fill: $("listing-fill"),
    align: $("listing-align"),
    upscale: $("listing-upscale"),
    background: $("listing-background"),
    color: $("listing-color"),
    imageRow: $("listing-image-row"),
    imageInput: $("listing-image-input"),
    imageButton: $("listing-image-button"),
    imageName: $("listing-image-name"),
    shadow: $("listing-shadow"),
    shadowRow: $("listing-shadow-row"),
    shadowOpacity: $("listing-shadow-opacity"),
    shadowBlur: $("listing-shadow-blur"),
    shadowX: $("listing-shadow-x"),
    shadowY: $("listing-shadow-y"),
    quality: $("quality"),
    qualityValue: $("quality-value"),
  };
  const known = presets.map((p) => ({ ...p, form: optionsToForm(p.values) }));
  for (const p of known) el.preset.add(new Option(p.label || p.name, p.name));
  let backgroundImage = null; // {blob, name, key}: never stored, never sent
  let imageKey = 0;

  function read() {
    const f = { ...FORM_DEFAULTS };
    f.crop = el.crop.checked;
    f.margin = clamp(num(el.margin.value), 0, 1000, 0);
    f.marginUnit = el.marginUnit.value === "px" ? "px" : "%";
    if (f.marginUnit === "px") f.margin = Math.round(f.margin);
    f.canvas = el.canvas.value;
    f.width = Math.round(clamp(num(el.width.value), 1, 16383, FORM_DEFAULTS.width));
    f.height = Math.round(clamp(num(el.height.value), 1, 16383, FORM_DEFAULTS.height));
    f.fill = clamp(num(el.fill.value), 1, 100, 100);
    f.align = el.align.value;
    f.upscale = el.upscale.checked;
    f.background = el.background.value;
    f.color = el.color.value.toLowerCase();
    f.shadow = el.shadow.value;
    f.shadowOpacity = clamp(num(el.shadowOpacity.value), 0, 100, FORM_DEFAULTS.shadowOpacity);
    f.shadowBlur = clamp(num(el.shadowBlur.value), 0, 50, FORM_DEFAULTS.shadowBlur);
    f.shadowX = clamp(num(el.shadowX.value), -50, 50, 0);
    f.shadowY = clamp(num(el.shadowY.value), -50, 50, 0);
    f.quality = Math.round(clamp(num(el.quality.value), 1, 100, DEFAULT_QUALITY));
    return f;
  }

  function write(f) {
    el.crop.checked = f.crop;
    el.margin.value = String(f.margin);
    el.marginUnit.value = f.marginUnit;
    if (![...el.canvas.options].some((o) => o.value === f.canvas)) {
      el.canvas.add(new Option(`Aspect ${f.canvas}`, f.canvas)); // a preset's own aspect
    }
    el.canvas.value = f.canvas;
    el.width.value = String(f.width);
    el.height.value = String(f.height);
    el.fill.value = String(f.fill);
    el.align.value = f.align;
    el.upscale.checked = f.upscale;
    el.background.value = f.background;
    el.color.value = f.color;
    el.shadow.value = f.shadow;
    el.shadowOpacity.value = String(f.shadowOpacity);
    el.shadowBlur.value = String(f.shadowBlur);
    el.shadowX.value = String(f.shadowX);
    el.shadowY.value = String(f.shadowY);
    el.quality.value = String(f.quality);
  }

  // Which preset the form matches ("" = none, "custom" = changed by hand).
  function match(f) {
    const mine = look(f);
    if (mine === look(FORM_DEFAULTS)) return "";
    return known.find((p) => look(p.form) === mine)?.name ?? "custom";
  }

  function refresh() {
    const f = read();
    const which = match(f);
    let custom = [...el.preset.options].find((o) => o.value === "custom");
    if (which === "custom" && !custom) {
      custom = new Option("Custom", "custom");
      el.preset.add(custom);
    } else if (which !== "custom" && custom) custom.remove();
    el.preset.value = which;
    const preset = known.find((p) => p.name === which);
    el.summary.textContent = summary(
      f,
      which === "" ? "None (transparent cutout)" : preset ? preset.label || preset.name : "",
      backgroundImage?.name,
    );
    el.rule.textContent = preset?.rule || "";
    el.rule.hidden = !preset?.rule;
    el.sizeRow.hidden = f.canvas !== "size";
    el.margin.disabled = el.marginUnit.disabled = !f.crop;
    el.fill.disabled = el.align.disabled = el.upscale.disabled = f.canvas === "none";
    el.color.hidden = f.background !== "color";
    el.imageRow.hidden = f.background !== "image";
    el.imageName.textContent = backgroundImage ? backgroundImage.name : "None chosen (kept in this tab only)";
    el.shadowRow.hidden = f.shadow === "none";
    for (const label of el.shadowRow.querySelectorAll(".listing-drop")) label.hidden = f.shadow !== "drop";
    el.qualityValue.textContent = String(f.quality);
    document.body.dataset.listing = which || "none"; // read by the tests
    return f;
  }

  function save(f) {
    const stored = {};
    for (const [key, value] of Object.entries(f)) {
      if (key === "background" && value === "image") continue; // the image itself is never kept
      if (value !== FORM_DEFAULTS[key]) stored[key] = value;
    }
    try {
      if (Object.keys(stored).length) localStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
      else localStorage.removeItem(STORAGE_KEY);
    } catch {
      // Storage disabled or full: the page works without remembered settings.
    }
  }

  function load() {
    let stored = {};
    try {
      stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") || {};
    } catch {
      stored = {};
    }
    const f = { ...FORM_DEFAULTS };
    for (const key of Object.keys(FORM_DEFAULTS)) {
      if (typeof stored[key] === typeof FORM_DEFAULTS[key]) f[key] = stored[key];
    }
    if (!CANVAS_CHOICES.includes(f.canvas) && !/^\d+(\.\d+)?:\d+(\.\d+)?$/.test(f.canvas)) f.canvas = "none";
    if (!["transparent", "color", "blur"].includes(f.background)) f.background = "transparent";
    if (!/^#[0-9a-f]{6}$/i.test(f.color)) f.color = FORM_DEFAULTS.color;
    if (!["center", "bottom"].includes(f.align)) f.align = "center";
    if (!["none", "drop", "contact"].includes(f.shadow)) f.shadow = "none";
    return f;
  }

  let timer = null;
  function changed({ immediate = true } = {}) {
    const f = refresh();
    save(f);
    clearTimeout(timer);
    // Typing in a number field: wait for a pause before recomposing.
    if (immediate) onChange();
    else timer = setTimeout(() => onChange(), 350);
  }

  el.preset.addEventListener("change", () => {
    const name = el.preset.value;
    if (name === "custom") return;
    const preset = known.find((p) => p.name === name);
    const quality = read().quality;
    const f = preset ? { ...preset.form } : { ...FORM_DEFAULTS };
    f.quality = typeof preset?.values.quality === "number" ? preset.form.quality : quality;
    write(f);
    if (preset?.values.format) setFormat(preset.values.format);
    changed();
  });
  for (const input of [el.margin, el.width, el.height, el.fill, el.shadowOpacity, el.shadowBlur, el.shadowX, el.shadowY]) {
    input.addEventListener("input", () => changed({ immediate: false }));
    // Leaving the field: show the value in use (clamped to its range).
    input.addEventListener("change", () => {
      const f = read();
      write(f);
      changed();
    });
  }
  for (const control of [el.crop, el.marginUnit, el.canvas, el.align, el.upscale, el.shadow]) {
    control.addEventListener("change", () => changed());
  }
  el.background.addEventListener("change", () => {
    if (el.background.value === "image" && !backgroundImage) el.imageInput.click();
    changed();
  });
  el.color.addEventListener("input", () => changed({ immediate: false }));
  el.color.addEventListener("change", () => changed());
  el.imageButton.addEventListener("click", () => el.imageInput.click());
  el.imageInput.addEventListener("change", () => {
    const file = el.imageInput.files?.[0];
    el.imageInput.value = "";
    if (!file) return;
    backgroundImage = { blob: file, name: file.name || "image", key: `bg${++imageKey}` };
    el.background.value = "image";
    changed();
  });
  el.quality.addEventListener("input", () => {
    el.qualityValue.textContent = el.quality.value;
  });
  el.quality.addEventListener("change", () => save(refresh()));

  write(load());
  refresh();

  return {
    // The options to compose with, or null for the plain cutout.
    options() {
      const f = read();
      const o = formToOptions(f);
      if (o.background === "image" && !backgroundImage) o.background = null; // nothing opened yet
      return composes(o) ? o : null;
    },
    backgroundImage: () => (backgroundImage ? { blob: backgroundImage.blob, key: backgroundImage.key } : null),
    quality: () => read().quality,
    selectPreset(name) {
      el.preset.value = name;
      el.preset.dispatchEvent(new Event("change"));
    },
  };
}
