// Which cutouts a person should look at: the engine's edge-confidence score
// (alphacut.confidence, edge_confidence), ported exactly, on the model's own mask.
//
// Where the model is sure, its mask commits near the subject's outline: within
// COMMIT_RADIUS pixels it reaches below COMMIT_LOW on one side and above COMMIT_HIGH on
// the other. The score is the share of the outline that commits; a cutout below
// REVIEW_SCORE, one where nothing was found, or one whose "subject" is the whole frame is
// flagged for review. The constants are the engine's (set on the everyday photos of
// benchmarks/quality.py: about a quarter flagged, catching most of the worst tenth).

const WORK_SIZE = 1024;
const OPAQUE = 0.5;
const EMPTY_SHARE = 0.001;
const FULL_SHARE = 0.98;
const COMMIT_RADIUS = 16;
// The mask is float32 and NumPy compares it with float32 thresholds: so do we, exactly.
const COMMIT_LOW = Math.fround(0.1);
const COMMIT_HIGH = Math.fround(0.9);
const BORDER_SHARE = 0.01;
const REVIEW_SCORE = 0.84;
const FULL_FRAME_SCORE = 0.3;

// Block means down to at most WORK_SIZE on the long side, by an integer factor (as the
// engine's _reduce; the model's 1024-px mask is used as it is). Float32, as NumPy's.
function reduce(mask, width, height) {
  const f = Math.ceil(Math.max(width, height) / WORK_SIZE);
  const w = Math.floor(width / f);
  const h = Math.floor(height / f);
  if (f === 1 || w === 0 || h === 0) return { a: mask, width, height };
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let dy = 0; dy < f; dy++) {
        for (let dx = 0; dx < f; dx++) sum += mask[(y * f + dy) * width + x * f + dx];
      }
      out[y * w + x] = sum / (f * f);
    }
  }
  return { a: out, width: w, height: h };
}

// The score of a mask (Float32Array, `width` x `height`, 0..1): {score, empty, fillsFrame,
// touchesBorder, subjectShare, uncertainOutline, needsReview}, the engine's Confidence.
export function edgeConfidence(mask, width, height) {
  const { a, width: w, height: h } = reduce(mask, width, height);
  const n = w * h;
  const subject = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] > OPAQUE) {
      subject[i] = 1;
      count++;
    }
  }
  const share = count / n;
  const empty = share < EMPTY_SHARE;
  const fills = share > FULL_SHARE;
  let border = 0;
  for (let x = 0; x < w; x++) border += subject[x] + subject[(h - 1) * w + x];
  for (let y = 0; y < h; y++) border += subject[y * w] + subject[y * w + w - 1];
  const touches = border / (2 * w + 2 * h) > BORDER_SHARE;

  // Outline: subject pixels with a non-subject 4-neighbour; each must commit within the
  // (2r+1)^2 window around it (cut at the image's border).
  const r = COMMIT_RADIUS;
  let outline = 0;
  let uncommitted = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!subject[i]) continue;
      const inner =
        (y === 0 || subject[i - w]) && (y === h - 1 || subject[i + w]) && (x === 0 || subject[i - 1]) && (x === w - 1 || subject[i + 1]);
      if (inner) continue;
      outline++;
      let hi = -Infinity;
      let lo = Infinity;
      for (let yy = Math.max(0, y - r), y1 = Math.min(h - 1, y + r); yy <= y1; yy++) {
        for (let xx = Math.max(0, x - r), x1 = Math.min(w - 1, x + r), j = yy * w + xx; xx <= x1; xx++, j++) {
          const v = a[j];
          if (v > hi) hi = v;
          if (v < lo) lo = v;
        }
      }
      if (hi < COMMIT_HIGH || lo > COMMIT_LOW) uncommitted++;
    }
  }
  const uncertain = outline ? uncommitted / outline : 0;
  let score = empty ? 0 : 1 - uncertain;
  if (!empty && fills) score = Math.min(score, FULL_FRAME_SCORE);
  return {
    score: Math.round(score * 1e4) / 1e4,
    empty,
    fillsFrame: fills,
    touchesBorder: touches,
    subjectShare: share,
    uncertainOutline: uncertain,
    needsReview: empty || fills || score < REVIEW_SCORE,
  };
}
