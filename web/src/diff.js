// Diffs as CodeMirror ChangeSets. Used when the page must move its unacknowledged
// edits onto a text it did not see evolve (the daemon restarted, or the page was
// reloaded across a restart): the edits are rebased over the diff, so the diff
// should touch only what others changed (a one-region diff from the first to the
// last difference would swallow the place where this page types whenever others
// typed on both sides of it, and move its edits to the edge of that region).
import { ChangeSet } from '@codemirror/state';

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;
const MAX_D = 1000; // edit steps the fine diff searches before giving up
const MAX_N = 200000; // code points of the differing middle it takes on

// The changes from text `a` to text `b`: common prefix and suffix, then a Myers
// diff by code point of the middle (one region when the middle is too large or
// too different).
export function diffChangeSet(a, b) {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p < n && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--; // never split a surrogate pair
  let s = 0;
  while (s < n - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--;
  if (p === a.length && p === b.length) return ChangeSet.empty(a.length);
  const am = a.slice(p, a.length - s), bm = b.slice(p, b.length - s);
  const hunks = myers(am, bm) || [{ from: 0, to: am.length, insert: bm }];
  return ChangeSet.of(hunks.map((h) => ({ from: h.from + p, to: h.to + p, insert: h.insert })), a.length);
}

// Myers' O(ND) diff of two strings by code point: [{from, to, insert}] in UTF-16
// offsets of `a`, or null past MAX_N / MAX_D.
export function myers(a, b) {
  const A = Array.from(a), B = Array.from(b);
  const N = A.length, M = B.length;
  if (N + M > MAX_N) return null;
  const max = Math.min(N + M, MAX_D);
  const off = max + 1;
  const V = new Int32Array(2 * max + 3);
  const trace = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = (k === -d || (k !== d && V[off + k - 1] < V[off + k + 1])) ? V[off + k + 1] : V[off + k - 1] + 1;
      let y = x - k;
      while (x < N && y < M && A[x] === B[y]) { x++; y++; }
      V[off + k] = x;
      if (x >= N && y >= M) { found = d; break; }
    }
    trace.push(V.slice(off - d, off + d + 1)); // V[k] for k in [-d, d] after step d
  }
  if (found < 0) return null;
  // Walk back from (N, M): each step is one insertion (of B[y]) or deletion (of A[x]).
  const ops = []; // [kind, x, y], kind 'i' or 'd', in reverse
  let x = N, y = M;
  for (let d = found; d > 0; d--) {
    const prev = trace[d - 1]; // index k + (d - 1)
    const at = (k) => prev[k + d - 1];
    const k = x - y;
    const pk = (k === -d || (k !== d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1;
    const px = at(pk), py = px - pk;
    while (x > px && y > py) { x--; y--; }
    if (x === px) ops.push(['i', x, py]); else ops.push(['d', px, py]);
    x = px; y = py;
  }
  ops.reverse();
  // UTF-16 offset of each code point of A
  const pos = new Int32Array(N + 1);
  for (let i = 0; i < N; i++) pos[i + 1] = pos[i] + A[i].length;
  const hunks = [];
  let h = null;
  for (const [kind, ox, oy] of ops) {
    if (!h || h.to !== ox) { h = { from: ox, to: ox, insert: '' }; hunks.push(h); }
    if (kind === 'd') h.to = ox + 1; else h.insert += B[oy];
  }
  return hunks.map((u) => ({ from: pos[u.from], to: pos[u.to], insert: u.insert }));
}

// Move a sequence of changes (each applying after the previous one, the first to
// the text `over` also applies to) over `over`: the result applies, in sequence,
// after `over`. Text inserted at the same place as `over`'s goes after it.
// Also gives `over` moved past the whole sequence: a ChangeSet from the text the
// sequence gave to the text over + the result gives (positions map through it).
export function rebaseSequence(seq, over) {
  const out = [];
  let o = over;
  for (const c of seq) {
    out.push(c.map(o));
    o = o.map(c, true);
  }
  return { seq: out, over: o };
}
