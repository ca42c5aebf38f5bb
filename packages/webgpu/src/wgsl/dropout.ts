/**
 * Dropout in WGSL, following @te/core's counter-based mapping (dropout-rng.ts) bit for bit: Philox-4x32-10 at
 * counter (j / 4, i, b * h + head, offset) with key (seed low, seed high); element j keeps its probability
 * when word j % 4 reaches the threshold. WGSL has no 64-bit integers, so the high half of the 32x32 product
 * is assembled from 16-bit pieces.
 */
export const DROPOUT_WGSL = `
fn mulhi32(a: u32, b: u32) -> u32 {
  let a_lo = a & 0xffffu;
  let a_hi = a >> 16u;
  let b_lo = b & 0xffffu;
  let b_hi = b >> 16u;
  let lolo = a_lo * b_lo;
  let mid1 = a_hi * b_lo;
  let mid2 = a_lo * b_hi;
  let carry = ((lolo >> 16u) + (mid1 & 0xffffu) + (mid2 & 0xffffu)) >> 16u;
  return a_hi * b_hi + (mid1 >> 16u) + (mid2 >> 16u) + carry;
}
fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round++) {
    let hi0 = mulhi32(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi32(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}
fn dropout_keep(bi: u32, hi: u32, i: u32, j: u32) -> bool {
  let words = philox4x32_10(vec4<u32>(j >> 2u, i, bi * U.h + hi, U.rng_offset), vec2<u32>(U.seed_lo, U.seed_hi));
  return words[j & 3u] >= U.dropout_threshold;
}
`;
