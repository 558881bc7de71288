// Remote people in the editor: each one's selection (translucent, in their colour)
// and cursor (a caret with their name). Drawn in a layer above the text, outside
// the editable element, so the text of [data-notes-editor] stays the note's text.
import { StateField, StateEffect, EditorSelection } from '@codemirror/state';
import { layer, RectangleMarker, Direction } from '@codemirror/view';

// value: [{session, name, fp, cls, ranges: [{anchor, head}]}] in the current document
export const setRemotes = StateEffect.define();

const clamp = (p, len) => Math.max(0, Math.min(len, p | 0));

export const remotesField = StateField.define({
  create: () => [],
  update(value, tr) {
    for (const e of tr.effects) if (e.is(setRemotes)) return e.value;
    if (!tr.docChanged || !value.length) return value;
    return value.map((p) => ({
      ...p,
      ranges: p.ranges.map((r) => {
        if (r.anchor === r.head) {
          const x = tr.changes.mapPos(r.head, 1);
          return { anchor: x, head: x };
        }
        const fwd = r.anchor < r.head;
        const from = tr.changes.mapPos(Math.min(r.anchor, r.head), 1);
        const to = Math.max(from, tr.changes.mapPos(Math.max(r.anchor, r.head), -1));
        return fwd ? { anchor: from, head: to } : { anchor: to, head: from };
      }),
    }));
  },
});

export function clampRanges(ranges, len) {
  return ranges.map((r) => ({ anchor: clamp(r.anchor, len), head: clamp(r.head, len) }));
}

class RemoteCaret {
  constructor(left, top, height, name, cls, session) {
    Object.assign(this, { left, top, height, name, cls, session });
  }
  draw() {
    const el = document.createElement('div');
    el.className = `cm-remote-caret ${this.cls}`;
    el.dataset.session = this.session;
    const label = document.createElement('span');
    label.className = 'cm-remote-name';
    label.textContent = this.name;
    el.append(label);
    this.place(el);
    return el;
  }
  place(el) {
    el.style.left = `${this.left}px`;
    el.style.top = `${this.top}px`;
    el.style.height = `${this.height}px`;
  }
  update(el, prev) {
    if (prev.name !== this.name || prev.cls !== this.cls || prev.session !== this.session) return false;
    this.place(el);
    return true;
  }
  eq(o) {
    return o.left === this.left && o.top === this.top && o.height === this.height &&
      o.name === this.name && o.cls === this.cls && o.session === this.session;
  }
}

function base(view) {
  const rect = view.scrollDOM.getBoundingClientRect();
  const left = view.textDirection === Direction.LTR ? rect.left : rect.right - view.scrollDOM.clientWidth * view.scaleX;
  return { left: left - view.scrollDOM.scrollLeft * view.scaleX, top: rect.top - view.scrollDOM.scrollTop * view.scaleY };
}

export const remoteLayer = layer({
  above: true,
  class: 'cm-remote-layer',
  update: (u) => u.docChanged || u.viewportChanged || u.geometryChanged ||
    u.startState.field(remotesField) !== u.state.field(remotesField),
  markers(view) {
    const out = [];
    const b = base(view);
    const len = view.state.doc.length;
    for (const p of view.state.field(remotesField)) {
      for (const r0 of p.ranges) {
        const r = { anchor: clamp(r0.anchor, len), head: clamp(r0.head, len) };
        if (r.anchor !== r.head) {
          out.push(...RectangleMarker.forRange(view, `cm-remote-sel ${p.cls}`, EditorSelection.range(r.anchor, r.head)));
        }
        const c = view.coordsAtPos(r.head, r.head > r.anchor ? -1 : 1);
        if (!c) continue;
        out.push(new RemoteCaret((c.left - b.left) / view.scaleX, (c.top - b.top) / view.scaleY,
          (c.bottom - c.top) / view.scaleY, p.name, p.cls, p.session));
      }
    }
    return out;
  },
});

export const presenceExtensions = [remotesField, remoteLayer];
