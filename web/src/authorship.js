// Authorship marks: who wrote each character. The daemon describes the text at one
// version ({"t":"authorship"}); from then on the page keeps the marks itself: text
// typed here is the local person's, text arriving in an update is its author's.
// Shown only while the editor has the class "show-authorship" (a toggle).
import { StateField, StateEffect, Transaction } from '@codemirror/state';
import { Decoration, EditorView } from '@codemirror/view';

export const setAuthorship = StateEffect.define(); // DecorationSet, or null to stop tracking

let remoteAuthor = null;
// Run fn (which builds the transaction of remote changes) with their author: a
// fingerprint, or a function (from, to) => [{from, to, fp}] naming the author of each
// piece of an inserted range (a reconciliation brings several people's text at once).
export function withRemoteAuthor(fp, fn) {
  remoteAuthor = fp;
  try { return fn(); } finally { remoteAuthor = null; }
}

export function authorshipExtension(localFp, markFor) {
  const field = StateField.define({
    create: () => ({ active: false, deco: Decoration.none }),
    update(v, tr) {
      for (const e of tr.effects) {
        if (e.is(setAuthorship)) return e.value ? { active: true, deco: e.value } : { active: false, deco: Decoration.none };
      }
      if (!v.active || !tr.docChanged) return v;
      const deco = v.deco.map(tr.changes);
      const who = tr.annotation(Transaction.remote) ? remoteAuthor : localFp();
      if (!who) return { active: true, deco };
      const add = [];
      tr.changes.iterChangedRanges((fA, tA, fB, tB) => {
        if (tB <= fB) return;
        if (typeof who !== 'function') { add.push(markFor(who).range(fB, tB)); return; }
        for (const p of who(fB, tB)) if (p.fp && p.to > p.from) add.push(markFor(p.fp).range(p.from, p.to));
      }, true);
      return { active: true, deco: add.length ? deco.update({ add, sort: true }) : deco };
    },
    provide: (f) => EditorView.decorations.from(f, (v) => v.deco),
  });
  return field;
}

const marks = new Map();
export function authorMark(cls, fp) {
  let m = marks.get(cls);
  if (!m) {
    m = Decoration.mark({ class: `nc-au ${cls}`, attributes: { 'data-author': fp } });
    marks.set(cls, m);
  }
  return m;
}
