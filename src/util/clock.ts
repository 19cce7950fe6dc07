// Operation times in nanoseconds: wall-clock anchored once, then advanced by the monotonic clock,
// so that times never go backwards within a daemon and carry sub-millisecond resolution.
const anchorWall = BigInt(Date.now()) * 1_000_000n;
const anchorMono = process.hrtime.bigint();
let last = 0n;

export function nowNs(): bigint {
  let t = anchorWall + (process.hrtime.bigint() - anchorMono);
  if (t <= last) t = last + 1n;
  last = t;
  return t;
}

/** The anchors of nowNs, for the writes served in C (native/fastwrite.c keeps the same clock). */
export function clockAnchors(): { wall: bigint; mono: bigint } {
  return { wall: anchorWall, mono: anchorMono };
}
