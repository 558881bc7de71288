// web/src/reconcile.js without a browser: random texts, random edits of this page
// (pending, on the confirmed text) and of others (on the confirmed text too), a merge
// that keeps both (others' edits first, then this page's mapped over them: what the
// daemon's acknowledgements describe, ties either way), and the reconciliation from the
// text shown to the merged one. It must give exactly the merged text, retain every
// character typed here (never delete and re-insert it), and leave a cursor that stood
// right after this page's last insertion right after it still.
// the same module instance as web/src uses (web/node_modules)
import { ChangeSet, Text } from '../../web/node_modules/@codemirror/state/dist/index.js';
import { baseRuns, applyRuns, ownLabeller, reconcile } from '../../web/src/reconcile.js';
import { check } from './lib.mjs';

const ROUNDS = 3000;

function rng(seed) {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

const ALPHABET = 'abcdef \n😀é';
function word(r, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += [...ALPHABET][Math.floor(r() * [...ALPHABET].length)];
  return s;
}

// A random edit of doc (never splitting a surrogate pair).
function edit(r, doc, tag) {
  const s = doc.toString();
  const ok = (p) => p === 0 || p === s.length || !(s.charCodeAt(p - 1) >= 0xd800 && s.charCodeAt(p - 1) <= 0xdbff);
  let from = Math.floor(r() * (s.length + 1));
  while (!ok(from)) from--;
  let to = from;
  if (r() < 0.35) { to = Math.min(s.length, from + Math.floor(r() * 4)); while (!ok(to)) to++; }
  const insert = r() < 0.8 ? `${tag}${word(r, 1 + Math.floor(r() * 3))}` : '';
  return ChangeSet.of([{ from, to, insert }], doc.length);
}

export default async function reconcileTest() {
  const res = [];
  let bad = 0, cursorBad = 0, deletedOwn = 0, firstBad = null;
  const r = rng(18);
  for (let round = 0; round < ROUNDS; round++) {
    const base = Text.of(word(r, Math.floor(r() * 30)).split('\n'));
    // this page: pending edits P1..Pn on the confirmed text, in sequence
    const pending = [];
    let shown = base;
    for (let k = 0, n = 1 + Math.floor(r() * 4); k < n; k++) { const c = edit(r, shown, '<'); pending.push(c); shown = c.apply(shown); }
    // others: X1..Xm on the confirmed text, in sequence
    const others = [];
    let theirs = base;
    for (let k = 0, m = Math.floor(r() * 4); k < m; k++) { const c = edit(r, theirs, '>'); others.push(c); theirs = c.apply(theirs); }
    // the daemon's list: the others' updates, then ours mapped over them (ties either way)
    const X = others.reduce((a, c) => a.compose(c), ChangeSet.empty(base.length));
    const P = pending.reduce((a, c) => a.compose(c), ChangeSet.empty(base.length));
    const before = r() < 0.5;
    const acks = [];
    let xRest = X, doc = theirs;
    for (const p of pending) { // each own edit mapped over the others (and they over it)
      const moved = p.map(xRest, !before);
      xRest = xRest.map(p, before);
      acks.push(moved);
      doc = moved.apply(doc);
    }
    const target = doc;
    // the labels, as sync.js builds them
    const own = ownLabeller();
    let dRuns = baseRuns(base.length);
    for (const p of pending) dRuns = applyRuns(dRuns, p, own);
    const ownT = ownLabeller();
    let tRuns = baseRuns(base.length);
    for (const x of others) tRuns = applyRuns(tRuns, x, (len) => ({ k: 'R', s: 0, n: len, a: 'other' }));
    for (const a of acks) tRuns = applyRuns(tRuns, a, ownT);
    let out;
    try { out = reconcile(dRuns, shown.length, tRuns, target); } catch (e) { out = null; if (!firstBad) firstBad = { round, error: e.message }; }
    if (!out || !out.changes.apply(shown).eq(target)) { bad++; if (!firstBad) firstBad = { round, shown: shown.toString(), target: target.toString() }; continue; }
    // no unit typed here is deleted by the reconciliation
    let ownDeleted = false;
    const ownUnits = [];
    let pos = 0;
    for (const run of dRuns) { if (run.k === 'O') for (let i = 0; i < run.n; i++) ownUnits.push(pos + i); pos += run.n; }
    out.changes.iterChanges((fromA, toA) => { if (ownUnits.some((u) => u >= fromA && u < toA)) ownDeleted = true; });
    if (ownDeleted) deletedOwn++;
    // the cursor after the last insertion typed here stays after it
    let lastEnd = -1;
    pending[pending.length - 1].iterChanges((_fA, _tA, _fB, tB, ins) => { if (ins.length) lastEnd = tB; });
    if (lastEnd >= 0) {
      const at = out.changes.mapPos(lastEnd, -1);
      let want = -1;
      acks[acks.length - 1].iterChanges((_fA, _tA, _fB, tB, ins) => { if (ins.length) want = tB; });
      if (want >= 0 && at !== want) cursorBad++;
    }
    void P;
  }
  check(res, bad === 0, `${ROUNDS} random reconciliations give the daemon's text exactly`, firstBad);
  check(res, deletedOwn === 0, 'no character typed on the page is deleted and re-inserted by a reconciliation', { deletedOwn });
  check(res, cursorBad === 0, 'a cursor after the page\'s last insertion stays after it', { cursorBad });
  return res;
}
