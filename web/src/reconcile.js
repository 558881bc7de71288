// Where this page's text meets the daemon's again, without moving what was typed here.
//
// The page is a replica of its own (docs/web.md, "Model"): it types on the version it
// last took from the daemon, and while its own edits are unacknowledged it holds back
// the updates that arrive, so its text is always exactly one version of the note (the
// daemon's version plus its own edits), the version the daemon merges them on. When the
// daemon has acknowledged all of them, the page has two texts: D, what it shows (the
// confirmed text with its own edits on top), and T, the daemon's text after the held
// updates (its own edits among them, merged by the CRDT). This module computes the
// change from D to T that keeps every character both have, by identity, not by a diff
// of strings: the characters of the confirmed text and those typed here are retained
// where they are, and only the others' insertions and deletions are applied around
// them. The cursor, mapped through it, stays right after what its owner was typing.
//
// Labels: one per UTF-16 unit, kept as runs {k, s, n, a}:
//   k 'B' — a unit of the confirmed text, s its offset there;
//   k 'O' — a unit this page inserted, s its rank among all units it inserted since the
//           confirmed text (the daemon's acknowledgements insert them in the same order:
//           it stores the page's splices in order, as one change);
//   k 'R' — a unit someone else inserted (a its author's fingerprint, for authorship).
// Units both texts have keep their relative order (a CRDT never reorders what one
// version already held), which is what the walk below relies on; if it ever meets a
// contradiction it throws, and the caller falls back to a plain diff.
import { ChangeSet } from '@codemirror/state';

function pushRun(out, r) {
  if (!r.n) return;
  const l = out[out.length - 1];
  if (l && l.k === r.k && (r.k === 'R' ? l.a === r.a : l.s + l.n === r.s)) l.n += r.n;
  else out.push({ ...r });
}

// The labels of a text of `n` units that is the confirmed text itself.
export function baseRuns(n) {
  return n ? [{ k: 'B', s: 0, n, a: null }] : [];
}

// Apply ChangeSet `changes` to `runs`; `label(len)` labels the units each change inserts.
export function applyRuns(runs, changes, label) {
  const out = [];
  let ri = 0, roff = 0, posA = 0;
  const walk = (len, keep) => {
    while (len > 0) {
      const r = runs[ri];
      if (!r) throw new Error('labels shorter than the text');
      const take = Math.min(len, r.n - roff);
      if (keep) pushRun(out, { k: r.k, s: r.k === 'R' ? 0 : r.s + roff, n: take, a: r.a });
      roff += take;
      len -= take;
      if (roff === r.n) { ri++; roff = 0; }
    }
  };
  changes.iterChanges((fromA, toA, fromB, toB) => {
    walk(fromA - posA, true);
    walk(toA - fromA, false);
    posA = toA;
    if (toB > fromB) pushRun(out, label(toB - fromB));
  });
  walk(changes.length - posA, true);
  return out;
}

// Labels of the own units a sequence of ChangeSets inserts, ranked from `first`.
export function ownLabeller(first = 0) {
  let next = first;
  return (len) => { const r = { k: 'O', s: next, n: len, a: null }; next += len; return r; };
}

// Sorted, merged intervals [s, e) of the units of kind k in runs.
function present(runs, k) {
  const iv = runs.filter((r) => r.k === k).map((r) => [r.s, r.s + r.n]).sort((x, y) => x[0] - y[0]);
  const out = [];
  for (const [s, e] of iv) {
    const l = out[out.length - 1];
    if (l && s <= l[1]) l[1] = Math.max(l[1], e); else out.push([s, e]);
  }
  return out;
}

// The smallest value >= x in intervals iv, or Infinity.
function nextIn(iv, x) {
  let lo = 0, hi = iv.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (iv[m][1] <= x) lo = m + 1; else hi = m; }
  if (lo === iv.length) return Infinity;
  return Math.max(x, iv[lo][0]);
}

// The change from D (labels dRuns, length dLen) to T (labels tRuns, text tText, a
// CodeMirror Text), and who inserted each range it inserts: {changes, authors:
// [{from, to, a}] in T's positions}. Throws on labels that contradict each other.
export function reconcile(dRuns, dLen, tRuns, tText) {
  const inT = { B: present(tRuns, 'B'), O: present(tRuns, 'O') };
  const specs = [], authors = [];
  let i = 0, ioff = 0, j = 0, joff = 0, posD = 0, posT = 0;
  for (;;) {
    const t = tRuns[j], d = dRuns[i];
    if (t && t.k === 'R') { // someone else's insertion: goes in here
      const len = t.n - joff;
      specs.push({ from: posD, to: posD, insert: tText.sliceString(posT, posT + len) });
      authors.push({ from: posT, to: posT + len, a: t.a });
      posT += len; j++; joff = 0;
      continue;
    }
    if (!d) {
      if (t) throw new Error('the daemon has text this page never had');
      break;
    }
    const x = d.s + ioff;
    const next = nextIn(inT[d.k], x);
    if (next > x) { // gone from T: someone deleted it
      const len = Math.min(d.n - ioff, next - x);
      specs.push({ from: posD, to: posD + len });
      posD += len; ioff += len;
      if (ioff === d.n) { i++; ioff = 0; }
      continue;
    }
    if (!t || t.k !== d.k || t.s + joff !== x) throw new Error('the texts order their common characters differently');
    const len = Math.min(d.n - ioff, t.n - joff);
    posD += len; posT += len; ioff += len; joff += len;
    if (ioff === d.n) { i++; ioff = 0; }
    if (joff === t.n) { j++; joff = 0; }
  }
  if (posD !== dLen || posT !== tText.length) throw new Error('labels do not cover the texts');
  return { changes: ChangeSet.of(specs, dLen), authors };
}
