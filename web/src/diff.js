// A one-region diff: common prefix and suffix, as a CodeMirror ChangeSet. Used when
// the page must move its unacknowledged edits onto a text it did not see evolve
// (the daemon restarted, or the page was reloaded across a restart).
import { ChangeSet } from '@codemirror/state';

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

export function diffChangeSet(a, b) {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p < n && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--; // never split a surrogate pair
  let s = 0;
  while (s < n - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--;
  if (p === a.length && p === b.length) return ChangeSet.empty(a.length);
  return ChangeSet.of([{ from: p, to: a.length - s, insert: b.slice(p, b.length - s) }], a.length);
}

// Move a sequence of changes (each applying after the previous one, the first to
// the text `over` also applies to) over `over`: the result applies, in sequence,
// after `over`. Text inserted at the same place as `over`'s goes after it.
export function rebaseSequence(seq, over) {
  const out = [];
  let o = over;
  for (const c of seq) {
    out.push(c.map(o));
    o = o.map(c, true);
  }
  return out;
}
