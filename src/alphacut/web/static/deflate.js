// One zlib stream from several, so that a PNG can be compressed on several threads.
//
// The browser's CompressionStream("deflate") cannot flush: each piece of a photo it
// compresses ends with a final deflate block. joinZlib() turns those pieces back into
// one stream, as zlib's own deflate would have written with a flush between them:
//
// - it walks each piece's deflate blocks (header, Huffman tables, codes and extra bits:
//   no output is made) to find where its final block starts and where that block's
//   end-of-block code ends, bit for bit;
// - it clears that block's BFINAL bit and follows the block with an empty stored block,
//   which brings the stream back to a byte boundary, where the next piece's first block
//   begins (RFC 1951, 3.2.3 and 3.2.4);
// - the Adler-32 of the whole is combined from the pieces' own (as zlib's
//   adler32_combine does), so no byte is read twice.
//
// A piece that does not parse (never seen: the pieces come from the browser's own zlib)
// makes joinZlib return null, and the caller compresses the photo in one piece.

const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DISTANCE_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

// A decoding table for canonical Huffman code lengths: indexed by the next `bits` bits of
// the stream (codes are stored most significant bit first, so the index is reversed);
// each entry is symbol << 4 | code length, or -1 where no code starts.
function huffman(lengths) {
  let bits = 0;
  const count = new Uint16Array(16);
  for (const length of lengths) {
    count[length]++;
    if (length > bits) bits = length;
  }
  const table = new Int32Array(1 << bits).fill(-1);
  count[0] = 0;
  const next = new Uint16Array(16);
  for (let b = 1, code = 0; b <= 15; b++) {
    code = (code + count[b - 1]) << 1;
    next[b] = code;
  }
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    const length = lengths[symbol];
    if (!length) continue;
    let code = next[length]++;
    let reversed = 0;
    for (let i = 0; i < length; i++, code >>= 1) reversed = (reversed << 1) | (code & 1);
    for (let k = reversed; k < table.length; k += 1 << length) table[k] = (symbol << 4) | length;
  }
  return { table, bits };
}

const FIXED = (() => {
  const lengths = new Uint8Array(288);
  lengths.fill(8, 0, 144);
  lengths.fill(9, 144, 256);
  lengths.fill(7, 256, 280);
  lengths.fill(8, 280, 288);
  return { literal: huffman(lengths), distance: huffman(new Uint8Array(30).fill(5)) };
})();

// The final block of a raw deflate stream: {start, end}, the bit offsets of its header
// and of the first bit after its end-of-block code. Throws where the data is not deflate.
export function finalBlock(data) {
  let pos = 0; // next byte to load
  let buf = 0; // loaded bits, least significant first
  let cnt = 0; // how many
  const fill = (n) => {
    // n <= 16: cnt stays below 24, so the shifts stay within 32 bits.
    while (cnt < n) {
      buf |= (pos < data.length ? data[pos] : 0) << cnt;
      pos++;
      cnt += 8;
    }
  };
  const take = (n) => {
    fill(n);
    const v = buf & ((1 << n) - 1);
    buf >>>= n;
    cnt -= n;
    return v;
  };
  const decode = ({ table, bits }) => {
    fill(bits);
    const entry = table[buf & ((1 << bits) - 1)];
    if (entry < 0) throw new Error("not a deflate stream: no such code");
    const length = entry & 15;
    buf >>>= length;
    cnt -= length;
    return entry >> 4;
  };
  for (;;) {
    if (pos - (cnt >> 3) > data.length) throw new Error("not a deflate stream: cut short");
    const start = pos * 8 - cnt;
    const final = take(1);
    const type = take(2);
    if (type === 0) {
      take(cnt & 7); // to the byte boundary
      const length = take(16);
      if ((take(16) ^ 0xffff) !== length) throw new Error("not a deflate stream: stored length");
      pos += length - (cnt >> 3);
      buf = 0;
      cnt = 0;
    } else {
      let literal = FIXED.literal;
      let distance = FIXED.distance;
      if (type === 2) {
        const nLiteral = take(5) + 257;
        const nDistance = take(5) + 1;
        const nCodeLength = take(4) + 4;
        const codeLengths = new Uint8Array(19);
        for (let i = 0; i < nCodeLength; i++) codeLengths[CODE_LENGTH_ORDER[i]] = take(3);
        const lengthCode = huffman(codeLengths);
        const lengths = new Uint8Array(nLiteral + nDistance);
        for (let i = 0; i < lengths.length; ) {
          const symbol = decode(lengthCode);
          if (symbol < 16) lengths[i++] = symbol;
          else {
            if (symbol === 16 && i === 0) throw new Error("not a deflate stream: repeat first");
            const [value, repeat] =
              symbol === 16 ? [lengths[i - 1], 3 + take(2)] : symbol === 17 ? [0, 3 + take(3)] : [0, 11 + take(7)];
            if (i + repeat > lengths.length) throw new Error("not a deflate stream: lengths overrun");
            lengths.fill(value, i, i + repeat);
            i += repeat;
          }
        }
        literal = huffman(lengths.subarray(0, nLiteral));
        distance = huffman(lengths.subarray(nLiteral));
      } else if (type !== 1) throw new Error("not a deflate stream: block type 3");
      for (;;) {
        const symbol = decode(literal);
        if (symbol < 256) continue;
        if (symbol === 256) break;
        if (symbol > 285) throw new Error("not a deflate stream: length code");
        if (LENGTH_EXTRA[symbol - 257]) take(LENGTH_EXTRA[symbol - 257]);
        const d = decode(distance);
        if (d > 29) throw new Error("not a deflate stream: distance code");
        if (DISTANCE_EXTRA[d]) take(DISTANCE_EXTRA[d]);
      }
    }
    if (final) {
      const end = pos * 8 - cnt;
      if (end > data.length * 8) throw new Error("not a deflate stream: cut short");
      return { start, end };
    }
  }
}

// zlib's adler32_combine: the Adler-32 of A followed by B, from theirs and B's length.
export function adler32Combine(a, b, lengthB) {
  const BASE = 65521;
  const rem = lengthB % BASE;
  let sum1 = a & 0xffff;
  let sum2 = (rem * sum1) % BASE;
  sum1 += (b & 0xffff) + BASE - 1;
  sum2 += ((a >>> 16) & 0xffff) + ((b >>> 16) & 0xffff) + BASE - rem;
  while (sum1 >= BASE) sum1 -= BASE;
  while (sum2 >= BASE) sum2 -= BASE;
  return ((sum2 << 16) | sum1) >>> 0;
}

// pieces: [{zlib: Uint8Array, length}], zlib streams of consecutive parts of the data
// (length: the uncompressed bytes of each) -> the chunks of one zlib stream of the whole
// (Uint8Arrays to concatenate), or null if a piece did not parse.
export function joinZlib(pieces) {
  const chunks = [new Uint8Array([0x78, 0x9c])];
  let adler = 1;
  for (let i = 0; i < pieces.length; i++) {
    const { zlib, length } = pieces[i];
    if (zlib.length < 6 || (zlib[0] & 0x0f) !== 8 || zlib[1] & 0x20) return null;
    const raw = zlib.subarray(2, zlib.length - 4);
    const tail = new DataView(zlib.buffer, zlib.byteOffset + zlib.length - 4, 4).getUint32(0);
    adler = i === 0 ? tail : adler32Combine(adler, tail, length);
    if (i === pieces.length - 1) {
      chunks.push(raw);
      break;
    }
    let block;
    try {
      block = finalBlock(raw);
    } catch {
      return null;
    }
    if (Math.ceil(block.end / 8) !== raw.length) return null;
    raw[block.start >> 3] &= ~(1 << (block.start & 7)); // no longer the final block
    // An empty stored block: its 3 header bits in the padding after the end-of-block code
    // (zeros) if they fit, else in one more zero byte; then LEN 0, NLEN 0xffff.
    const padding = (8 - (block.end & 7)) & 7;
    chunks.push(raw, new Uint8Array(padding >= 3 ? [0, 0, 0xff, 0xff] : [0, 0, 0, 0xff, 0xff]));
  }
  const trailer = new Uint8Array(4);
  new DataView(trailer.buffer).setUint32(0, adler);
  chunks.push(trailer);
  return chunks;
}
