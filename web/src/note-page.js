// The note page: editor, preview, presence, authorship, decisions and action items,
// status line and history. The network side is in sync.js.
import { EditorState, Prec, Compartment } from '@codemirror/state';
import {
  EditorView, keymap, lineNumbers, highlightActiveLineGutter, highlightSpecialChars, drawSelection,
  dropCursor, highlightActiveLine,
} from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { LanguageSupport, syntaxHighlighting, HighlightStyle } from '@codemirror/language';
import { markdownLanguage, markdownKeymap } from '@codemirror/lang-markdown';
import { tags } from '@lezer/highlight';
import { h, clear, redraw, cspNonce, relTime, clockTime } from './dom.js';
import { People, initials } from './people.js';
import { NoteSync, wholeCharacters } from './sync.js';
import { presenceExtensions, remotesField } from './presence.js';
import { authorshipExtension, authorMark } from './authorship.js';
import { conflictsField, setConflicts } from './conflicts.js';

const highlight = HighlightStyle.define([
  { tag: tags.heading1, class: 'tok-h1' },
  { tag: tags.heading2, class: 'tok-h2' },
  { tag: [tags.heading3, tags.heading4, tags.heading5, tags.heading6], class: 'tok-h3' },
  { tag: tags.emphasis, class: 'tok-em' },
  { tag: tags.strong, class: 'tok-strong' },
  { tag: tags.strikethrough, class: 'tok-strike' },
  { tag: [tags.link, tags.url], class: 'tok-link' },
  { tag: tags.monospace, class: 'tok-code' },
  { tag: tags.quote, class: 'tok-quote' },
  { tag: [tags.processingInstruction, tags.meta, tags.contentSeparator], class: 'tok-mark' },
]);

const MODES = ['edit', 'both', 'view'];
const ITEM_MAX = 400; // characters of an item shown in the side panel
const clip = (s, n) => (s.length > n ? `${s.slice(0, n)}…` : s);
const HIGHLIGHT_MAX = 64 * 1024;
// The preview renders at most this many characters (cut at a line end): laying out
// megabytes of HTML at every pause in typing would freeze the page.
const PREVIEW_MAX = 200 * 1000;
// The preview renders in pieces (preview.js, splitMarkdown) of about this many
// characters, yielding to the page between them for at most SLICE_MS of work at a
// time: a large note's preview never holds the editor for more than a frame or two.
// A piece whose text did not change keeps its DOM from the last rendering.
const PIECE = 8000;
const SLICE_MS = 12;

// dist/preview.js (markdown-it and DOMPurify, a quarter of the code) is fetched
// and run only when the preview first renders, after the editor is on screen.
let previewLib = null;
function loadPreviewLib() {
  if (!previewLib) {
    previewLib = new Promise((resolve, reject) => {
      if (window.notesPreview) return resolve(window.notesPreview);
      const s = document.createElement('script');
      s.src = '/assets/preview.js';
      s.onload = () => { s.remove(); if (window.notesPreview) resolve(window.notesPreview); else reject(new Error('preview.js did not load')); };
      s.onerror = () => { s.remove(); previewLib = null; reject(new Error('preview.js did not load')); };
      document.head.append(s);
    });
  }
  return previewLib;
}
const nextTask = () => new Promise((resolve) => { setTimeout(resolve, 0); });

export function notePage(app) {
  const m = /^\/n\/([0-9a-f]{32})\/?$/.exec(location.pathname);
  if (!m) {
    clear(app, h('p', { class: 'error' }, 'This is not a note address.'));
    return;
  }
  new NotePage(app, m[1]).start();
}

class NotePage {
  constructor(app, noteId) {
    this.app = app;
    this.noteId = noteId;
    this.people = new People();
    this.nonce = cspNonce();
    this.fields = {};
    this.status = null;
    this.items = [];
    this.unattached = [];
    this.confirming = new Set(); // item ids whose confirmation was sent, not yet seen
    this.presence = [];
    this.connState = 'connecting';
    this.connDetail = null;
    this.historyList = null;
    this.historyView = null;
    this.previewTimer = 0;
    this.previewGen = 0; // bumped by each rendering: an older one still running stops
    this.previewPieces = new Map(); // piece text → its rendered elements (last rendering)
    this.authorshipOn = false;
    this.authorshipClass = new Compartment();
    this.language = new Compartment();
    this.docLength = 0;
    this.authorshipField = authorshipExtension(() => this.sync && this.sync.me && this.sync.me.fp,
      (fp) => authorMark(this.people.get(fp).cls, fp));
    this.build();
  }

  build() {
    const mode = MODES.includes(localStorage.getItem('notes:mode')) ? localStorage.getItem('notes:mode') : 'both';
    this.titleEl = h('h1', { class: 'title' }, 'Loading…');
    this.metaEl = h('span', { class: 'meta' });
    this.modeButtons = MODES.map((md) => h('button', {
      type: 'button', class: 'seg', 'data-mode': md, 'aria-pressed': String(md === mode),
      onclick: () => this.setMode(md),
    }, md === 'edit' ? 'Edit' : md === 'both' ? 'Both' : 'View'));
    this.authorBtn = h('button', { type: 'button', class: 'toggle', 'aria-pressed': 'false', 'data-action': 'authorship',
      title: 'Colour the text by who wrote it', onclick: () => this.toggleAuthorship() }, 'Authorship');
    this.historyBtn = h('button', { type: 'button', class: 'toggle', 'aria-pressed': 'false', 'data-action': 'history',
      title: 'The note as it was at an earlier change', onclick: () => this.toggleHistory() }, 'History');
    this.presenceEl = h('ul', { class: 'presence', 'aria-label': 'People with this note open' });
    this.editorPane = h('section', { class: 'pane editor-pane', 'aria-label': 'Editor' },
      h('div', { class: 'placeholder' }, 'Connecting to the local daemon…'));
    this.historyPane = h('section', { class: 'pane history-pane', 'aria-label': 'History (read-only)', hidden: true });
    this.previewEl = h('article', { class: 'preview markdown-body' });
    this.previewPane = h('section', { class: 'pane preview-pane', 'aria-label': 'Preview' }, this.previewEl);
    this.itemsEl = h('div', { class: 'items' });
    this.side = h('aside', { class: 'side', 'aria-label': 'Decisions and action items' },
      h('h2', {}, 'Decisions and action items'), this.itemsEl);
    this.historyBar = h('div', { class: 'history-bar', hidden: true });
    this.main = h('main', { class: 'note-main', 'data-mode': mode }, this.editorPane, this.historyPane, this.previewPane, this.side);
    this.statusEl = h('footer', { class: 'status', role: 'status', 'aria-live': 'polite' });
    this.errorEl = h('div', { class: 'banner error', hidden: true });
    clear(this.app,
      h('header', { class: 'topbar' },
        h('a', { href: '/', class: 'back', title: 'All notes' }, '← Notes'),
        h('div', { class: 'heading' }, this.titleEl, this.metaEl),
        h('div', { class: 'controls' },
          h('div', { class: 'segmented', role: 'group', 'aria-label': 'View' }, this.modeButtons),
          this.authorBtn, this.historyBtn),
        this.presenceEl),
      this.errorEl, this.historyBar, this.main, this.statusEl);
    setInterval(() => this.renderStatus(), 5000);
  }

  start() {
    this.sync = new NoteSync({ noteId: this.noteId, parent: this.editorPane, ui: this });
    // What early.js received meanwhile (usually the hello and the items) is taken
    // in by connect(), synchronously: the editor is created and updated in this
    // task. Each update of the view reads the DOM selection, which makes the
    // browser lay out the whole page there and then; with the page hidden
    // (display: none) until the end of this task those layouts are empty, and
    // the page is laid out once, for its first frame.
    this.app.hidden = true;
    try { this.sync.connect(); } finally { this.app.hidden = false; }
    const page = this;
    // Read-only hooks for tests and for the curious (nothing here is secret).
    window.notesPage = Object.freeze({
      noteId: this.noteId,
      ready: () => !!this.sync.view,
      text: () => (this.sync.view ? this.sync.view.state.doc.toString() : null),
      confirmedText: () => (this.sync.confirmedDoc ? this.sync.confirmedDoc.toString() : null),
      version: () => this.sync.version,
      pending: () => this.sync.pendingCount(),
      fallbacks: () => this.sync.fallbacks,
      conflicts: () => (this.conflicts || []).map((c) => ({ line: c.line, nlines: c.nlines, merged: c.merged,
        sides: c.sides.map((x) => ({ name: x.by && x.by.name, fp: x.by && x.by.fp, change: x.change, text: x.text })) })),
      connected: () => this.sync.connected,
      me: () => ({ ...(this.sync.me || {}) }),
      people: () => this.presence.map((p) => ({ session: p.session, name: p.name, fp: p.fp })),
      remoteCursors: () => (this.sync.view ? this.sync.view.state.field(remotesField).map((p) => ({
        session: p.session, name: p.name, fp: p.fp, ranges: p.ranges.map((r) => ({ ...r })) })) : []),
      reveal: (pos) => { if (this.sync.view) this.sync.view.dispatch({ effects: EditorView.scrollIntoView(pos, { y: 'center' }) }); },
      coordsAt: (pos) => { const c = this.sync.view && this.sync.view.coordsAtPos(pos); return c ? { left: c.left, top: c.top, bottom: c.bottom } : null; },
      selection: () => (this.sync.view ? this.sync.view.state.selection.ranges.map((r) => ({ anchor: r.anchor, head: r.head })) : []),
      get page() { return page.constructor.name; },
    });
  }

  // ---- NoteSync callbacks ----
  extensions() {
    return [
      lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), history(), drawSelection(), dropCursor(),
      EditorState.allowMultipleSelections.of(true), highlightActiveLine(),
      syntaxHighlighting(highlight),
      this.language.of(this.languageFor(this.docLength)),
      keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
      EditorView.contentAttributes.of({ 'data-notes-editor': '', 'aria-label': 'Note text (Markdown)', spellcheck: 'true' }),
      this.authorshipClass.of(this.authorshipAttrs()),
      this.nonce ? EditorView.cspNonce.of(this.nonce) : [],
      wholeCharacters,
      presenceExtensions,
      this.authorshipField,
      conflictsField,
      EditorView.updateListener.of((u) => this.sync.viewUpdate(u)),
    ];
  }

  get remotesField() { return remotesField; }

  // A large note (over HIGHLIGHT_MAX characters) is shown plain: no Markdown
  // highlighting (the Markdown parser is slow on huge paragraphs, quadratic on
  // thousands of links in one) and no line wrapping (a wrapped line of a megabyte
  // is laid out whole at every update; unwrapped, CodeMirror draws only what is on
  // screen). A peer can send anything: the page stays responsive and editable.
  languageFor(len) {
    return len <= HIGHLIGHT_MAX ? [new LanguageSupport(markdownLanguage), Prec.high(keymap.of(markdownKeymap)), EditorView.lineWrapping] : [];
  }

  checkLanguage() {
    if (!this.view) return;
    const len = this.view.state.doc.length;
    if ((len <= HIGHLIGHT_MAX) !== (this.docLength <= HIGHLIGHT_MAX)) {
      this.docLength = len;
      this.view.dispatch({ effects: this.language.reconfigure(this.languageFor(len)) });
    }
    this.docLength = len;
  }

  // Someone as the daemon describes them (docs/web.md, "People"): {fp, name, color,
  // known} — a person when the device is linked to one, else a device — with the
  // devices that are that person (`device`, `devices`: their text gets the person's
  // colour), or, in hello and presence, a device with its person in `person`.
  person(p) {
    if (!p || typeof p !== 'object') return null;
    const pp = p.person && typeof p.person === 'object' ? p.person : null;
    if (pp) {
      const e = this.people.note({ fp: pp.fp || pp.fingerprint, name: pp.name, color: pp.color, known: pp.known });
      if (e) { this.people.alias(p.fp || p.fingerprint, e); return e; }
    }
    const e = this.people.note({ fp: p.fp || p.fingerprint, name: p.name, color: p.color, known: p.known });
    if (e && p.device && typeof p.device === 'object') this.people.alias(p.device.fp, e);
    if (e && Array.isArray(p.devices)) for (const d of p.devices) if (d && typeof d === 'object') this.people.alias(d.fp, e);
    return e;
  }

  // A person in the side panel or the history: the name (the user's own for the
  // key, else the one it claims), its colour, the fingerprint in the tooltip, and
  // "unknown key" while the user has not named the key (notes trust).
  who(w, withFp) {
    if (!w || typeof w !== 'object') return h('span', { class: 'who' }, 'unknown');
    const e = this.person(w);
    const fp = e ? e.fp : String(w.fp || w.fingerprint || '');
    const name = typeof w.name === 'string' && w.name ? w.name : (e && e.name) || fp || 'unknown';
    const dev = w.device && typeof w.device === 'object' && w.device.fp && w.device.fp !== fp ? `, device ${w.device.fp}` : '';
    const tip = `${w.linked ? 'person' : 'key'} ${fp}${dev}${w.known === false ? ' — not named by you: check the fingerprint with its owner, then notes trust' : ''}`;
    return h('span', { class: 'who-ref' },
      h('span', { class: `who ${e ? e.cls : ''}`, title: tip, 'data-fp': fp }, name),
      withFp ? [' ', h('code', { class: 'fp' }, fp)] : null,
      w.known === false ? [' ', h('span', { class: 'unknown', title: tip }, 'unknown key')] : null,
      w.revoked ? [' ', h('span', { class: 'bad' }, 'device revoked')] : null,
      w.contested ? [' ', h('span', { class: 'bad' }, 'device claimed by two people')] : null,
      // The key signed two changes with one seq: both are kept, so say whom not to trust.
      w.equivocating ? [' ', h('span', { class: 'bad', title: 'this key signed two different changes with one sequence number; all are kept as evidence' }, 'equivocating key')] : null);
  }

  authorMark(entry) { return authorMark(entry.cls, entry.fp); }

  // The editor was created with the current authorship class (extensions()): no
  // reconfiguration here (on a large note it cost as much as a third of the view's
  // creation). The preview comes after the editor's first frame.
  onViewReady(view) {
    this.editorPane.querySelector('.placeholder')?.remove();
    this.view = view;
    requestAnimationFrame(() => this.schedulePreview(true));
  }

  onHello(msg) {
    if (typeof msg.text === 'string') this.docLength = msg.text.length;
    if (msg.me) this.person(msg.me);
    if (msg.fields && typeof msg.fields === 'object') this.setFields(msg.fields);
  }

  onConnection(state, detail) {
    this.connState = state;
    this.connDetail = detail || null;
    this.renderStatus();
  }

  // The count of edits in flight changes with every key and its acknowledgement: the
  // status line follows within 100 ms, not in the task that draws the text (a remote
  // key is on screen once that task ends).
  onPending() {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => { this.statusTimer = 0; this.renderStatus(); }, 100);
  }

  onDoc() {
    if (this.conflictsUnplaced) this.placeConflicts();
    this.checkLanguage();
    this.schedulePreview();
  }

  onMessage(msg) {
    switch (msg.t) {
      case 'items':
        this.items = Array.isArray(msg.items) ? msg.items : [];
        this.unattached = Array.isArray(msg.unattached_confirmations) ? msg.unattached_confirmations : [];
        this.conflicts = Array.isArray(msg.conflicts) ? msg.conflicts.filter((c) => c && Array.isArray(c.sides)) : [];
        this.confirming.clear();
        this.resolving = null;
        this.renderItems();
        this.placeConflicts();
        break;
      case 'status': this.status = msg; this.renderStatus(); break;
      case 'fields': if (msg.fields && typeof msg.fields === 'object') this.setFields(msg.fields); break;
      case 'presence': break;
      case 'history': this.onHistory(msg); break;
      case 'at': this.onAt(msg); break;
      case 'error':
        this.showError(typeof msg.message === 'string' ? msg.message : 'error');
        if (this.confirming.size || this.resolving) { this.confirming.clear(); this.resolving = null; this.renderItems(); }
        break;
      default: break; // newer daemon: ignore what this page does not know
    }
  }

  showError(text) {
    clear(this.errorEl, text);
    this.errorEl.hidden = false;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => { this.errorEl.hidden = true; }, 8000);
  }

  // presence arrives through NoteSync.handle (it maps the ranges); the list is drawn here
  renderPresence(people) {
    const me = this.sync.me || {};
    const seen = new Set();
    this.presence = [];
    const items = [];
    for (const p of people) {
      if (!p || typeof p.session !== 'string' || seen.has(p.session)) continue;
      seen.add(p.session);
      const e = this.person(p);
      if (!e) continue;
      this.presence.push(p);
      const name = e.name || p.name || p.fp;
      const self = p.session === me.session;
      const where = `${e.fp !== p.fp ? `, device ${p.fp}` : ''}${p.remote ? ' — on another laptop' : ''}`;
      items.push(h('li', { class: `person ${e.cls}${self ? ' self' : ''}`, 'data-session': p.session, 'data-fp': e.fp,
        title: `${name}${self ? ' (you)' : ''} — key fingerprint ${e.fp}${where}` },
      h('span', { class: 'dot', 'aria-hidden': 'true' }, initials(name)), h('span', { class: 'name' }, name)));
    }
    redraw(this.presenceEl, items);
  }

  setFields(f) {
    this.fields = f;
    const title = typeof f.title === 'string' && f.title ? f.title
      : typeof f.datetime === 'string' && f.datetime ? `Meeting of ${f.datetime}` : 'Untitled note';
    clear(this.titleEl, title);
    document.title = `${title} — notes`;
    clear(this.metaEl, typeof f.datetime === 'string' ? f.datetime : '');
    this.schedulePreview();
  }

  // ---- modes, preview ----
  setMode(md) {
    this.main.dataset.mode = md;
    for (const b of this.modeButtons) b.setAttribute('aria-pressed', String(b.dataset.mode === md));
    try { localStorage.setItem('notes:mode', md); } catch { /* private mode */ }
    if (this.view) this.view.requestMeasure();
    this.schedulePreview(true);
  }

  schedulePreview(now) {
    clearTimeout(this.previewTimer);
    if (this.main.dataset.mode === 'edit') return;
    const doc = (this.historyView || this.view)?.state.doc; // its length: no copy of the text
    if (!doc) return;
    const delay = now ? 0 : Math.min(1500, 80 + Math.min(doc.length, PREVIEW_MAX) / 200);
    this.previewTimer = setTimeout(() => this.renderPreview(), delay);
  }

  previewText() {
    if (this.historyView) return this.historyView.state.doc.toString();
    return this.view ? this.view.state.doc.toString() : null;
  }

  async renderPreview() {
    const gen = ++this.previewGen;
    let lib;
    try {
      lib = await loadPreviewLib();
    } catch (e) {
      clear(this.previewEl, h('p', { class: 'error' }, 'The preview could not load (reload the page); the editor works without it.'));
      return;
    }
    if (gen !== this.previewGen) return;
    let text = this.previewText();
    if (text == null) return;
    let cut = null;
    if (text.length > PREVIEW_MAX) {
      const end = text.lastIndexOf('\n', PREVIEW_MAX);
      cut = h('p', { class: 'preview-cut' }, `The preview shows the first ${Math.round(PREVIEW_MAX / 1000)} thousand of ${text.length.toLocaleString()} characters; the editor has all of them.`);
      text = text.slice(0, end > PREVIEW_MAX / 2 ? end : PREVIEW_MAX);
    }
    const f = this.fields || {};
    const head = [];
    if (typeof f.title === 'string' && f.title) head.push(h('h1', { class: 'fm-title' }, f.title));
    const dl = [];
    for (const [k, v] of Object.entries(f)) {
      if (k === 'title' || v == null) continue;
      const vals = Array.isArray(v) ? v.map(String) : [String(v)];
      dl.push(h('dt', {}, k), h('dd', {}, vals.length > 1 || Array.isArray(v) ? vals.map((x) => h('span', { class: 'chip' }, x)) : vals[0]));
    }
    if (dl.length) head.push(h('dl', { class: 'fm' }, dl));
    const { chunks, env } = lib.splitMarkdown(text, PIECE);
    const old = this.previewPieces, fresh = new Map(), els = [];
    // The first rendering shows each piece as it is made; later ones swap once
    // at the end (mostly reused pieces), so the preview never shows half of both.
    const progressive = !old.size;
    if (progressive) clear(this.previewEl, head);
    let slice = performance.now();
    const used = new Map(); // src → how many of its old elements this rendering took
    for (const src of chunks) {
      const k = used.get(src) || 0;
      used.set(src, k + 1);
      let el = old.get(src)?.[k];
      if (!el) {
        if (performance.now() - slice > SLICE_MS) {
          await nextTask();
          if (gen !== this.previewGen) return;
          slice = performance.now();
        }
        el = h('div', { class: 'pv-piece' }, lib.renderMarkdown(src, env));
      }
      if (!fresh.has(src)) fresh.set(src, []);
      fresh.get(src).push(el);
      els.push(el);
      if (progressive) this.previewEl.append(el);
    }
    if (progressive) { if (cut) this.previewEl.append(cut); } else clear(this.previewEl, head, els, cut);
    this.previewPieces = fresh;
  }

  // ---- authorship ----
  toggleAuthorship() {
    this.authorshipOn = !this.authorshipOn;
    this.authorBtn.setAttribute('aria-pressed', String(this.authorshipOn));
    if (this.authorshipOn && !this.sync.authorshipWanted) this.sync.requestAuthorship();
    this.applyAuthorshipClass();
  }

  authorshipAttrs() {
    return EditorView.editorAttributes.of({ class: this.authorshipOn ? 'show-authorship' : 'hide-authorship' });
  }

  applyAuthorshipClass() {
    if (this.view) this.view.dispatch({ effects: this.authorshipClass.reconfigure(this.authorshipAttrs()) });
  }

  // ---- items ----
  // Mark the lines of each conflict in the editor (its positions are in the daemon's
  // text at its version: mapped to the text shown; later once the page is there).
  placeConflicts() {
    const view = this.sync && this.sync.view;
    if (!view) return;
    const out = [];
    this.conflictsUnplaced = false;
    for (const c of this.conflicts || []) {
      const from = this.sync.mapFrom(c.version, c.from, 1), to = this.sync.mapFrom(c.version, c.to, -1);
      if (from == null || to == null) { this.conflictsUnplaced = true; continue; }
      const names = c.sides.map((x) => this.person(x.by)).map((e) => (e && e.name) || '?');
      out.push({ from, to, title: `Edited at the same time by ${names.join(' and ')}: see "Edited at the same time" in the side panel` });
    }
    // None now and none marked (every page open): no update of the view, which
    // would lay the page out once more before its first frame.
    if (!out.length && view.state.field(conflictsField).size === 0) return;
    view.dispatch({ effects: setConflicts.of(out) });
  }

  renderConflicts() {
    const cs = this.conflicts || [];
    if (!cs.length) return null;
    return [h('h3', {}, `Edited at the same time (${cs.length})`),
      h('ul', { class: 'item-list conflicts' }, cs.map((c) => {
        const lines = c.nlines > 1 ? `Lines ${c.line}–${c.line + c.nlines - 1}` : `Line ${c.line}`;
        return h('li', { class: 'item conflict', 'data-line': c.line },
          h('span', { class: 'body' },
            h('strong', {}, `${lines}: `), 'rewritten by ', c.sides.map((x, i) => [i ? (i === c.sides.length - 1 ? ' and ' : ', ') : '', this.who(x.by, true)]),
            ' at the same time. Both versions are kept, merged, until someone chooses:',
            h('span', { class: 'version now' }, 'now: ', h('q', {}, clip(String(c.merged ?? ''), ITEM_MAX))),
            c.sides.map((x) => {
              const e = this.person(x.by);
              const busy = this.resolving === `${c.line}:${x.change}`;
              return h('span', { class: 'version side' }, this.who(x.by), ': ', h('q', {}, clip(String(x.text ?? ''), ITEM_MAX)), ' ',
                h('button', { type: 'button', class: 'keep', 'data-action': 'keep', 'data-change': x.change, disabled: busy || !!this.resolving,
                  title: 'Replace these lines with this version (stored as your edit, which ends the conflict)',
                  onclick: () => this.keepSide(c, x) }, busy ? 'Keeping…' : `Keep ${(e && e.name) || 'this'}'s`));
            })));
      }))];
  }

  keepSide(c, side) {
    if (this.resolving) return;
    if (this.sync.send({ t: 'resolve', line: c.line, merged: String(c.merged ?? ''), change: side.change })) {
      this.resolving = `${c.line}:${side.change}`;
      this.renderItems();
    } else {
      this.showError('Not connected to the daemon: choose again when the status line says connected.');
    }
  }

  renderItems() {
    const decisions = this.items.filter((i) => i && i.kind === 'decision');
    const tasks = this.items.filter((i) => i && (i.kind === 'task' || i.kind === 'todo'));
    const list = (arr) => h('ul', { class: 'item-list' }, arr.map((it) => this.renderItem(it)));
    const orphans = this.unattached.filter((c) => c && typeof c === 'object');
    clear(this.itemsEl,
      this.renderConflicts(),
      !this.items.length ? h('p', { class: 'empty' }, 'None yet. Write "RD: text" under a "TODOs" heading (an action item), "RD: Decision: text" or "text" under "Decisions", or "- [ ] RD: text" anywhere.') : null,
      decisions.length ? [h('h3', {}, `Decisions (${decisions.length})`), list(decisions)] : null,
      tasks.length ? [h('h3', {}, `Action items (${tasks.filter((t) => !t.done).length} open)`), list(tasks)] : null,
      orphans.length ? [h('h3', {}, 'Confirmations of items no longer in the note'),
        h('ul', { class: 'item-list orphans' }, orphans.map((c) => h('li', { class: 'item' },
          h('span', { class: 'conf warn' }, 'confirmation by ', this.who(c.by), ' of ',
            h('q', {}, clip(`${c.owner ? `${c.owner}: ` : ''}${String(c.text ?? '')}`, ITEM_MAX))))))] : null);
  }

  renderItem(it) {
    const isTask = it.kind !== 'decision';
    const rb = it.recorded_by && typeof it.recorded_by === 'object' ? it.recorded_by : null;
    const id = typeof it.id === 'string' && /^[0-9a-f]{16}$/.test(it.id) ? it.id : null;
    return h('li', { class: `item ${isTask ? 'task' : 'decision'}${isTask && it.done ? ' done' : ''}`, 'data-item': id },
      isTask ? h('span', { class: 'box', 'aria-label': it.done ? 'done' : 'open' }, it.done ? '☑' : '☐') : h('span', { class: 'box' }, '◆'),
      h('span', { class: 'body' },
        it.owner ? h('strong', { class: 'owner', title: it.owner_as_written && it.owner_as_written !== it.owner ? `written as ${it.owner_as_written}` : null }, `${it.owner}: `) : null,
        h('span', { class: 'text' }, clip(String(it.text ?? ''), ITEM_MAX)),
        h('span', { class: 'by' },
          rb ? ['recorded by ', this.who(rb, true)] : 'not yet recorded',
          ' ', this.renderVerified(it)),
        this.renderConfirmations(it, id)));
  }

  // A revoked device's text is told apart from everyone else's, and what it wrote
  // after its revocation from what it wrote before (docs/formats.md, "Decisions and
  // action items": the item's "revocation").
  renderVerified(it) {
    if (!it.verified) return h('span', { class: 'bad', title: 'not covered by a verified signature (not committed yet?)' }, '✗ not verified');
    if (it.revocation === 'after') {
      return h('span', { class: 'bad', 'data-revocation': 'after', title: 'a device revoked since wrote some of it without having seen its revocation: maybe not its owner' },
        '✗ from a revoked device, maybe after its revocation');
    }
    if (it.revocation === 'before') {
      return h('span', { class: 'conf warn', 'data-revocation': 'before', title: 'every signature verifies; a device that wrote it was revoked later' },
        '✓ verified, written before its device was revoked');
    }
    return h('span', { class: 'ok', title: 'covered by a verified signature' }, '✓ verified');
  }

  // "✓ confirmed by Omar, Rita", then each confirmation that does not count and why
  // (docs/trust.md, "Confirmations"), then the Confirm button when this person has
  // not confirmed the item as it reads now.
  renderConfirmations(it, id) {
    const cs = Array.isArray(it.confirmations) ? it.confirmations.filter((c) => c && typeof c === 'object') : [];
    const by = (c) => (c.by && typeof c.by === 'object' ? c.by : {});
    const counted = cs.filter((c) => c.state === 'confirmed' && c.counted);
    const quote = (c) => h('q', {}, clip(`${c.owner ? `${c.owner}: ` : ''}${String(c.text ?? '')}`, ITEM_MAX));
    const lines = [];
    if (counted.length) {
      lines.push(h('span', { class: 'conf ok', 'data-conf': 'confirmed' }, '✓ confirmed by ',
        counted.map((c, i) => [i ? ', ' : '', this.who(by(c))])));
    }
    for (const c of cs) {
      const w = this.who(by(c));
      const cl = (kind, ...parts) => lines.push(h('span', { class: `conf ${kind}`, 'data-conf': c.state }, ...parts));
      if (c.state === 'changed') cl('warn', '! changed after confirmation by ', w, ', who confirmed ', quote(c));
      else if (c.state === 'wrong-text') cl('bad', '✗ confirmation by ', w, ' is for another text, not counted: ', quote(c));
      else if (c.state === 'unknown-key') cl('bad', '✗ confirmation by ', w, ': a key linked to no person, not counted');
      else if (c.state === 'revoked') cl('bad', '✗ confirmation by ', w, ' from a revoked device, not counted');
      else if (c.state === 'no-item') cl('bad', '✗ confirmation by ', w, ' names no item now: ', quote(c));
    }
    const mine = cs.some((c) => c.state === 'confirmed' && by(c).mine === true);
    if (id && !mine && this.sync) {
      const busy = this.confirming.has(id);
      lines.push(h('button', { type: 'button', class: 'confirm', 'data-action': 'confirm', 'data-item': id, disabled: busy,
        title: 'Sign "I confirm this item reads as shown" with your key (the daemon signs; the text is checked first)',
        onclick: () => this.confirm(it, id) }, busy ? 'Confirming…' : 'Confirm'));
    }
    return lines.length ? h('span', { class: 'confs' }, lines) : null;
  }

  // The daemon signs only if the item still reads what this page shows.
  confirm(it, id) {
    if (this.confirming.has(id)) return;
    if (this.sync.send({ t: 'confirm', id, text: String(it.text ?? ''), owner: typeof it.owner === 'string' ? it.owner : null })) {
      this.confirming.add(id);
      this.renderItems();
    } else {
      this.showError('Not connected to the daemon: confirm again when the status line says connected.');
    }
  }

  // ---- status line ----
  renderStatus() {
    const parts = [];
    const c = this.connState, d = this.connDetail || {};
    if (c === 'online') parts.push(h('span', { class: 'st ok', 'data-st': 'daemon' }, '● connected to notes serve'));
    else if (c === 'connecting') parts.push(h('span', { class: 'st', 'data-st': 'daemon' }, '○ connecting…'));
    else if (c === 'incompatible') parts.push(h('span', { class: 'st bad', 'data-st': 'daemon' }, `the daemon speaks protocol v${d.v}: reload the page`));
    else parts.push(h('span', { class: 'st bad', 'data-st': 'daemon' }, `○ daemon unreachable — retrying${d.retryIn ? ` in ${Math.ceil(d.retryIn / 1000)} s` : ''}; your edits are kept`));
    const n = this.sync ? this.sync.pendingCount() : 0;
    parts.push(h('span', { class: n ? 'st warn' : 'st', 'data-st': 'pending' }, n ? `${n} edit${n > 1 ? 's' : ''} not yet taken by the daemon` : 'all edits taken'));
    const s = this.status;
    if (s) {
      if (s.online === false) parts.push(h('span', { class: 'st warn', 'data-st': 'peers' }, 'offline'));
      else parts.push(h('span', { class: 'st', 'data-st': 'peers' }, s.peers ? `${s.peers} peer${s.peers > 1 ? 's' : ''} connected` : 'no peer connected'));
      if (s.unsent) parts.push(h('span', { class: 'st warn', 'data-st': 'unsent' }, `${s.unsent} change${s.unsent > 1 ? 's' : ''} not yet sent to peers`));
      parts.push(h('span', { class: 'st', 'data-st': 'sync', title: s.last_sync_ms ? clockTime(s.last_sync_ms) : null }, `last sync ${relTime(s.last_sync_ms)}`));
    }
    const me = this.sync && this.sync.me;
    const mp = me && me.person && typeof me.person === 'object' ? me.person : null;
    if (me && (me.name || (mp && mp.name))) {
      parts.push(h('span', { class: 'st me', title: `${mp ? `person ${mp.key || ''}, ` : ''}device key ${me.key || ''}` },
        'you: ', (mp && mp.name) || me.name, ' ', h('code', {}, (mp && mp.fp) || me.fp || '')));
    }
    redraw(this.statusEl, parts);
  }

  // ---- history ----
  toggleHistory() {
    if (this.historyList) return this.leaveHistory();
    this.historyList = [];
    this.historyBtn.setAttribute('aria-pressed', 'true');
    clear(this.historyBar, h('span', {}, 'Loading history…'));
    this.historyBar.hidden = false;
    this.sync.send({ t: 'history' });
  }

  onHistory(msg) {
    if (!this.historyList) return;
    const changes = Array.isArray(msg.changes) ? msg.changes : [];
    this.historyList = changes;
    if (!changes.length) { clear(this.historyBar, h('span', {}, 'No committed change yet.'), this.backButton()); return; }
    this.slider = h('input', { type: 'range', min: 0, max: changes.length - 1, value: changes.length - 1, step: 1,
      'aria-label': 'Change', oninput: () => this.pickChange(+this.slider.value) });
    this.historyInfo = h('span', { class: 'info' });
    this.historyLog = h('ol', { class: 'history-list', reversed: true }, changes.slice().reverse().map((ch) => {
      const e = this.person(ch.by && typeof ch.by === 'object' ? ch.by : { fp: ch.fp, name: ch.name });
      return h('li', {}, h('button', { type: 'button', class: `change ${e ? e.cls : ''}`, 'data-index': ch.index,
        onclick: () => { this.slider.value = ch.index; this.pickChange(ch.index); } },
      h('span', { class: 'dot' }, ''), `${clockTime(ch.time_ms)} — ${ch.name || ch.fp}${ch.by && ch.by.known === false ? ' (unknown key)' : ''}`));
    }));
    clear(this.historyBar, h('label', {}, 'Change ', this.slider), this.historyInfo, this.backButton(),
      h('details', {}, h('summary', {}, `All ${changes.length} changes`), this.historyLog));
    this.pickChange(changes.length - 1);
  }

  backButton() {
    return h('button', { type: 'button', class: 'primary', onclick: () => this.leaveHistory() }, 'Back to live');
  }

  pickChange(i) {
    const ch = this.historyList[i];
    if (!ch) return;
    const by = ch.by && typeof ch.by === 'object' ? ch.by : null;
    clear(this.historyInfo, `#${i + 1} of ${this.historyList.length}: `, by ? this.who(by, true) : [`${ch.name || 'unknown'} `, h('code', {}, ch.fp || '')],
      ` — ${clockTime(ch.time_ms)} — `, h('code', { title: ch.id }, String(ch.id || '').slice(0, 12)));
    clearTimeout(this.atTimer);
    this.wantAt = i;
    this.atTimer = setTimeout(() => this.sync.send({ t: 'at', index: i }), 80);
  }

  onAt(msg) {
    if (!this.historyList || msg.index !== this.wantAt || typeof msg.text !== 'string') return;
    const state = EditorState.create({
      doc: msg.text,
      extensions: [lineNumbers(), EditorState.readOnly.of(true), EditorView.editable.of(false),
        syntaxHighlighting(highlight), msg.text.length <= HIGHLIGHT_MAX ? [new LanguageSupport(markdownLanguage), EditorView.lineWrapping] : [],
        EditorView.contentAttributes.of({ 'data-notes-history': '', 'aria-label': 'The note at an earlier change (read-only)' }),
        this.nonce ? EditorView.cspNonce.of(this.nonce) : []],
    });
    if (this.historyView) this.historyView.setState(state);
    else this.historyView = new EditorView({ state, parent: this.historyPane });
    this.historyPane.hidden = false;
    this.main.classList.add('in-history');
    this.schedulePreview(true);
  }

  leaveHistory() {
    this.historyList = null;
    this.historyBtn.setAttribute('aria-pressed', 'false');
    this.historyBar.hidden = true;
    if (this.historyView) { this.historyView.destroy(); this.historyView = null; }
    this.historyPane.hidden = true;
    this.main.classList.remove('in-history');
    if (this.view) this.view.requestMeasure();
    this.schedulePreview(true);
  }
}
