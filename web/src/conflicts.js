// Lines two people rewrote at the same time (issue 18; docs/format.md, "Concurrent
// edits of one line"): the daemon lists them in `items` (`conflicts`), each with
// every side's author and version. The editor marks those lines; the side panel
// shows the versions with one button each to keep it (a `resolve` to the daemon,
// which stores the choice as an edit that has seen both sides).
import { StateField, StateEffect } from '@codemirror/state';
import { Decoration, EditorView } from '@codemirror/view';

// value: [{from, to, title}] in the current text
export const setConflicts = StateEffect.define();

function build(doc, list) {
  const marks = [];
  for (const c of list) {
    const from = Math.max(0, Math.min(doc.length, c.from | 0));
    const to = Math.max(from, Math.min(doc.length, c.to | 0));
    for (let pos = from; ;) {
      const line = doc.lineAt(pos);
      marks.push(Decoration.line({ class: 'nc-conflict', attributes: { title: c.title } }).range(line.from));
      if (line.to + 1 >= to || line.to >= doc.length) break;
      pos = line.to + 1;
    }
  }
  return Decoration.set(marks, true);
}

export const conflictsField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects) if (e.is(setConflicts)) return build(tr.state.doc, e.value);
    return tr.docChanged ? deco.map(tr.changes) : deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});
