// The page's side of the co-editing protocol (docs/web.md): the page is a replica of its
// own, over one WebSocket per open note to its daemon.
//
// - Local edits apply at once (typing never waits for the network) and each goes to the
//   daemon at once, on the version this page stands on ("push"): the daemon stores it as
//   a change on that version and the CRDT merges it with whatever arrived meanwhile.
//   Nothing is refused as stale, and the page never moves its own edits.
// - While some of its edits are unacknowledged, the page holds back the updates that
//   arrive: its text stays exactly the version its edits were made on. Once all are
//   acknowledged, reconcile.js turns the text shown into the daemon's by applying only
//   what the others did around what was typed here, by identity: each person's words
//   stay whole and the cursor stays where its owner was typing.
// - Unconfirmed edits are also kept in sessionStorage, so a reload pushes them again on
//   the version they were made on; only after a daemon restart (a new epoch, whose
//   versions are new) are they moved onto the new text with a diff and pushed again.
import { EditorState, EditorSelection, ChangeSet, Text, Transaction, Annotation } from '@codemirror/state';
import { EditorView, Decoration } from '@codemirror/view';
import { diffChangeSet, rebaseSequence } from './diff.js';
import { withRemoteAuthor, setAuthorship } from './authorship.js';
import { setRemotes, clampRanges } from './presence.js';
import { baseRuns, applyRuns, ownLabeller, reconcile } from './reconcile.js';

export const PROTOCOL = 1;
const INSERT_CHUNK = 64 * 1024; // UTF-16 units of one inserted piece (a push must stay under 1 MiB)
const PUSH_BUDGET = 512 * 1024; // UTF-8 bytes of JSON per push (the daemon's limit is 1 MiB)
const MAX_IN_FLIGHT = 256; // updates pushed and not yet acknowledged
const hasSurrogate = /[\ud800-\udfff]/;
const LOG_KEEP = 4000; // confirmed updates remembered for mapping others' cursors
const RETRY = [250, 500, 1000, 2000, 4000, 5000];
const restored = Annotation.define();

function randomId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const utf8 = new TextEncoder();
const utf8Length = (s) => (s.length < 4096 ? s.length * 3 : utf8.encode(s).length);
const textOf = (s) => Text.of(String(s).split('\n'));
const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

// Changes never split a surrogate pair and never insert a lone surrogate: positions
// are UTF-16 units, the daemon stores code points and refuses half characters.
export const wholeCharacters = EditorState.transactionFilter.of((tr) => {
  if (!tr.docChanged || tr.annotation(Transaction.remote)) return tr;
  const doc = tr.startState.doc;
  let bad = false;
  const specs = [];
  tr.changes.iterChanges((fromA, toA, _fB, _tB, ins) => {
    let from = fromA, to = toA, text = ins.toString();
    if (from > 0 && from < doc.length && isLow(doc.sliceString(from, from + 1).charCodeAt(0)) &&
        isHigh(doc.sliceString(from - 1, from).charCodeAt(0))) { from--; text = doc.sliceString(from, from + 1) + text; bad = true; }
    if (to > 0 && to < doc.length && isLow(doc.sliceString(to, to + 1).charCodeAt(0)) &&
        isHigh(doc.sliceString(to - 1, to).charCodeAt(0))) { text += doc.sliceString(to, to + 1); to++; bad = true; }
    const fixed = text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
    if (fixed !== text) bad = true;
    specs.push({ from, to, insert: fixed });
  });
  if (!bad) return tr;
  // The resulting text has the same length (U+FFFD is one unit), so the selection holds.
  return { changes: specs, selection: tr.newSelection, effects: tr.effects, scrollIntoView: tr.scrollIntoView,
    annotations: [Transaction.userEvent.of(tr.annotation(Transaction.userEvent) || 'input')] };
});

export class NoteSync {
  // ui: {extensions(), onHello(msg), onMessage(msg), onConnection(state, detail), onDoc(), onPending(n), onViewReady(view)}
  constructor({ noteId, parent, ui }) {
    this.noteId = noteId;
    this.parent = parent;
    this.ui = ui;
    this.clientID = randomId();
    this.ws = null;
    this.epoch = null;
    this.me = null;
    this.view = null;
    this.synced = null; // the version this page stands on (the daemon's update count)
    this.confirmedDoc = null; // the text at that version
    this.pending = []; // own edits not yet acknowledged: {changes, splices}, in order
    this.sent = 0; // the first `sent` of them were pushed
    this.inbox = []; // updates after `synced`, held while own edits are unacknowledged
    this.inboxDoc = null; // the text after them
    this.inboxAcks = 0; // own edits they acknowledge
    this.acked = 0; // this clientID's updates acknowledged and taken in, in all
    this.astral = false; // the text may hold characters outside the BMP (surrogate pairs)
    this.fallbacks = 0; // reconciliations that had to use a diff (never expected)
    this.log = []; // ChangeDesc of confirmed updates logStart, logStart+1, …
    this.logStart = 0;
    this.pulling = false;
    this.restore = null; // a stored record waiting for the pull that places it
    this.retry = 0;
    this.stopped = false;
    this.people = []; // last presence message
    this.lastCursor = '';
    this.cursorTimer = 0;
    this.saveTimer = 0;
    this.authorshipWanted = false;
    this.connected = false;
    this.storageKey = `notes:unsent:${noteId}`;
    addEventListener('pagehide', () => this.save());
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') this.save(); });
  }

  get version() { return this.view ? this.synced : null; }
  pendingCount() { return this.view ? this.pending.length : (this.restore ? this.restore.pending.length : 0); }

  // ---- connection ----
  connect() {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    // `client`: whose count of committed updates the hello should carry ("taken"):
    // this page's, or before the first hello that of the edits kept from before a
    // reload (they were pushed under the clientID of that page load).
    let client = this.clientID;
    if (!this.view) { const rec = this.loadStored(); if (rec && typeof rec.clientID === 'string') client = rec.clientID; }
    // The socket page.html opened before this script ran, when it is for this note,
    // this protocol and this page's client (it is taken once: a reconnect opens anew).
    const early = window.__notesEarly;
    window.__notesEarly = null;
    const adopt = early && !this.view && client === this.clientID && early.note === this.noteId && early.v === PROTOCOL;
    if (adopt) this.clientID = early.client;
    else if (early) early.ws.close();
    const ws = adopt ? early.ws : new WebSocket(`${proto}//${location.host}/ws?note=${encodeURIComponent(this.noteId)}&v=${PROTOCOL}&client=${encodeURIComponent(client)}`);
    this.ws = ws;
    this.ui.onConnection('connecting');
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return this.fail('the daemon sent invalid JSON'); }
      if (!msg || typeof msg !== 'object' || typeof msg.t !== 'string') return this.fail('the daemon sent a message without a type');
      try { this.handle(msg); } catch (e) {
        console.error(e);
        this.fail(`cannot apply the daemon's message: ${e.message}`);
      }
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      // The daemon closes with 1008 when it refuses a message. Pushing the same edits
      // again and again would loop: after three such closes in a row, stop pushing
      // (the edits stay in the editor and in sessionStorage) and say so.
      if (ev.code === 1008) {
        this.refusals = (this.refusals || 0) + 1;
        if (this.refusals >= 3 && !this.blocked) {
          this.blocked = ev.reason || 'refused';
          this.ui.onMessage({ t: 'error', message: `The daemon refuses this page's edits (${this.blocked}); they are kept here, not saved. Copy them out, then reload.` });
        }
      }
      this.connected = false;
      this.pulling = false;
      if (this.stopped) return;
      const delay = RETRY[Math.min(this.retry++, RETRY.length - 1)];
      this.ui.onConnection('offline', { code: ev.code, reason: ev.reason, retryIn: delay });
      setTimeout(() => this.connect(), delay);
    };
    if (adopt) {
      for (const ev of early.msgs) ws.onmessage(ev);
      if (early.closed) ws.onclose(early.closed);
    }
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(msg)); return true; }
    return false;
  }

  // Something does not add up: forget the epoch (so the next hello rebuilds the text
  // from scratch, keeping unconfirmed edits) and reconnect.
  fail(why) {
    console.warn('notes:', why);
    this.epoch = null;
    this.ui.onMessage({ t: 'error', message: why });
    if (this.ws) this.ws.close(4000, 'resync');
  }

  handle(msg) {
    switch (msg.t) {
      case 'hello': return this.hello(msg);
      case 'updates': return this.updates(msg);
      case 'presence':
        this.people = Array.isArray(msg.people) ? msg.people : [];
        this.ui.renderPresence(this.people);
        return this.placePeople();
      case 'authorship': return this.authorship(msg);
      default: return this.ui.onMessage(msg); // items, status, history, at, fields, error; unknown types are ignored
    }
  }

  // ---- hello: first load, reload, reconnect, daemon restart ----
  hello(msg) {
    if (msg.v !== PROTOCOL) {
      this.stopped = true;
      this.ui.onConnection('incompatible', { v: msg.v });
      this.ws.close(1000, 'protocol version');
      return;
    }
    if (typeof msg.text !== 'string' || !Number.isInteger(msg.version) || typeof msg.epoch !== 'string') {
      throw new Error('malformed hello');
    }
    this.retry = 0;
    this.connected = true;
    this.me = msg.me || {};
    this.ui.onHello(msg);
    this.ui.onConnection('online');
    if (!this.view) {
      const rec = this.loadStored();
      if (rec && rec.epoch === msg.epoch && rec.version <= msg.version && !msg.stale) {
        // Reload: the stored edits go back on the version they were made on, once the
        // updates since are known (some of the edits may be among them, taken).
        this.restore = rec;
        this.restoreHello = msg;
        this.epoch = msg.epoch;
        this.pull(rec.version);
        return;
      }
      if (rec) { // the daemon restarted meanwhile
        const seq = rec.pending.map((j) => ChangeSet.fromJSON(j));
        const k = this.takenOf(msg, rec.clientID, rec.acked, seq.length);
        this.install(msg, this.moveOnto(textOf(rec.text), seq, msg.text, k).seq);
        return;
      }
      this.install(msg, []);
      return;
    }
    if (msg.epoch === this.epoch && msg.version >= this.synced && !msg.stale) {
      // Reconnected to the same list: what was held is asked for again, with the
      // acknowledgements of the edits the daemon took before the connection broke;
      // the others are pushed again, on the same version.
      const k = this.takenOf(msg, this.clientID, this.acked, this.pending.length);
      this.dropInbox();
      this.sent = k;
      this.pull(this.synced); // the push follows the answer
      this.push();
      this.sendCursor(true);
      if (this.authorshipWanted) this.requestAuthorship();
      return;
    }
    // A new epoch: the daemon restarted (or dropped this note's update list). Move
    // the unconfirmed edits onto the text it has now, leaving out those it had
    // committed before it stopped (the acknowledgement never came).
    const seq = this.pending.map((p) => p.changes);
    const k = this.takenOf(msg, this.clientID, this.acked, seq.length);
    this.acked += k;
    console.info(`notes: new epoch (daemon restarted): ${seq.length} unacknowledged edit(s), ${k} of them committed before it stopped${Number.isInteger(msg.taken) ? '' : ' (unknown: no "taken")'}`);
    const moved = this.moveOnto(this.confirmedDoc, seq, msg.text, k);
    this.install(msg, moved.seq, moved.map);
  }

  // How many of the `pending` unacknowledged updates of `clientID` the daemon
  // committed: hello.taken counts every update of clientID it committed, `acked`
  // those this page saw acknowledged. They are always the first ones (the daemon
  // takes a page's pushes in order). 0 when the daemon does not say.
  takenOf(msg, clientID, acked, pending) {
    if (!Number.isInteger(msg.taken) || !Number.isInteger(acked) || clientID == null) return 0;
    return Math.max(0, Math.min(pending, msg.taken - acked));
  }

  // Changes `seq` (in sequence on `base`), the first `taken` of which the daemon
  // already has, moved onto its `text`, as a sequence; and `map`, a ChangeSet from
  // the text they gave (base + seq) to the text they give now (for the selection).
  // Only after a daemon restart: its new versions do not name what the page stood on.
  moveOnto(base, seq, text, taken = 0) {
    let from = base;
    for (const c of seq.slice(0, taken)) from = c.apply(from);
    const rest = seq.slice(taken);
    const mine = rest.reduce((t, c) => c.apply(t), from);
    if (mine.toString() === text) return { seq: [], map: ChangeSet.empty(mine.length) }; // all taken
    const { seq: out, over } = rebaseSequence(rest, diffChangeSet(from.toString(), text));
    return { seq: out, map: over };
  }

  dropInbox() {
    this.inbox = [];
    this.inboxDoc = null;
    this.inboxAcks = 0;
  }

  // Start over on the text of `msg` at its version, with edits `seq` on top (pushed as
  // new edits; the first `taken` of them the daemon already has). `map` (optional): a
  // ChangeSet from the editor's text before to the text after, for the selection.
  install(msg, seq, map = null, taken = 0) {
    const prev = this.view;
    const sel = prev ? prev.state.selection : null;
    const prevLength = prev ? prev.state.doc.length : 0;
    const state = EditorState.create({ doc: msg.text, extensions: [this.ui.extensions()] });
    this.epoch = msg.epoch;
    this.synced = msg.version;
    this.confirmedDoc = state.doc;
    this.pending = [];
    this.sent = taken;
    this.dropInbox();
    this.astral = hasSurrogate.test(msg.text);
    this.log = [];
    this.logStart = msg.version;
    if (!prev) {
      this.view = new EditorView({ state, parent: this.parent, dispatchTransactions: (trs, view) => this.dispatch(trs, view) });
      this.ui.onViewReady(this.view);
    } else {
      this.view.setState(state);
    }
    for (const c of seq) this.view.dispatch({ changes: c, annotations: [restored.of(true), Transaction.userEvent.of('input.restore')] });
    if (sel) {
      const len = this.view.state.doc.length;
      const put = map && map.length === prevLength && map.newLength === len
        ? sel.map(map) // where the same text is now (the restored edits included)
        : EditorSelection.cursor(Math.min(sel.main.head, len));
      this.view.dispatch({ selection: put });
    }
    this.placePeople();
    if (this.authorshipWanted) this.requestAuthorship();
    this.sendCursor(true);
    this.push();
    this.ui.onDoc();
  }

  finishRestore(msg) {
    const rec = this.restore;
    this.restore = null;
    const claim = `notes:claimed:${rec.clientID}`;
    let seq = [];
    try {
      if (!localStorage.getItem(claim)) {
        localStorage.setItem(claim, String(Date.now()));
        seq = rec.pending.map((j) => ChangeSet.fromJSON(j));
      }
    } catch { seq = rec.pending.map((j) => ChangeSet.fromJSON(j)); }
    // The edits go back on the version they were made on, under the clientID they were
    // pushed with (the daemon finds the ones it took by it); the updates since follow.
    let k = 0;
    if (seq.length) {
      this.clientID = rec.clientID;
      this.acked = Number.isInteger(rec.acked) ? rec.acked : 0;
      k = this.takenOf(msg.hello || {}, rec.clientID, this.acked, seq.length);
    }
    this.install({ ...msg, epoch: this.epoch, text: rec.text, version: rec.version }, seq, null, k);
    this.updates({ t: 'updates', version: rec.version, updates: msg.updates });
  }

  // ---- updates from the daemon ----
  pull(version) {
    this.pulling = this.send({ t: 'pull', version });
  }

  updates(msg) {
    if (!Number.isInteger(msg.version) || !Array.isArray(msg.updates)) throw new Error('malformed updates');
    if (this.restore) {
      if (msg.version === this.restore.version) this.finishRestore({ ...msg, hello: this.restoreHello });
      return; // broadcasts that overtook the pull answer are in it
    }
    if (!this.view) return;
    const have = this.synced + this.inbox.length;
    if (msg.version > have) { // a gap: ask for what is missing
      if (!this.pulling) this.pull(have);
      return;
    }
    const ups = msg.updates.slice(have - msg.version);
    this.pulling = false;
    if (!ups.length) { this.push(); return; }
    let doc = this.inbox.length ? this.inboxDoc : this.confirmedDoc;
    for (const u of ups) {
      const changes = ChangeSet.fromJSON(u.changes);
      if (changes.length !== doc.length) throw new Error('an update does not fit the text');
      doc = changes.apply(doc);
      const own = u.clientID === this.clientID;
      const acks = own && Number.isInteger(u.acks) && u.acks > 0 ? u.acks : 0;
      this.inbox.push({ changes, clientID: u.clientID, author: typeof u.author === 'string' ? u.author : null, own, acks });
      this.inboxAcks += acks;
    }
    this.inboxDoc = doc;
    this.drain();
    this.push(); // acknowledgements free room for edits held back (MAX_IN_FLIGHT)
  }

  // Take in the held updates when the page may: at once when it has no edit of its own
  // in flight, else once the daemon has acknowledged every one of them.
  drain() {
    if (!this.inbox.length) return;
    const n = this.pending.length;
    if (n && this.inboxAcks < n) return; // its own edits are still on the way
    if (this.inboxAcks > n) throw new Error('acknowledgements for edits this page never sent');
    if (!n) this.applyRemote(); else this.reconcileOwn();
    for (const u of this.inbox) this.log.push(u.changes.desc);
    if (this.log.length > LOG_KEEP) {
      const drop = this.log.length - LOG_KEEP / 2;
      this.log.splice(0, drop);
      this.logStart += drop;
    }
    this.synced += this.inbox.length;
    this.confirmedDoc = this.inboxDoc;
    this.acked += n;
    this.pending = [];
    this.sent = 0;
    this.dropInbox();
    if (n) {
      this.refusals = 0;
      this.scheduleSave();
      this.sendCursor(true);
    }
    this.ui.onPending(0);
    this.placePeople();
    this.ui.onDoc();
  }

  // No edit of ours in between: the updates apply as they are, one transaction each.
  applyRemote() {
    const trs = [];
    let state = this.view.state;
    for (const u of this.inbox) {
      const tr = withRemoteAuthor(u.author, () => state.update({ changes: u.changes, annotations: [Transaction.remote.of(true), Transaction.addToHistory.of(false)] }));
      trs.push(tr);
      state = tr.state;
    }
    this.view.update(trs);
  }

  // All our edits are acknowledged: go from the text shown to the daemon's, keeping
  // what was typed here in place (reconcile.js).
  reconcileOwn() {
    const shown = this.view.state.doc;
    const label = ownLabeller();
    let dRuns = baseRuns(this.confirmedDoc.length);
    for (const p of this.pending) dRuns = applyRuns(dRuns, p.changes, label);
    const ownT = ownLabeller();
    let tRuns = baseRuns(this.confirmedDoc.length);
    for (const u of this.inbox) {
      tRuns = applyRuns(tRuns, u.changes, u.own ? ownT : (len) => ({ k: 'R', s: 0, n: len, a: u.author }));
    }
    let out;
    try {
      out = reconcile(dRuns, shown.length, tRuns, this.inboxDoc);
      if (!out.changes.apply(shown).eq(this.inboxDoc)) throw new Error('the result is not the daemon\'s text');
    } catch (e) {
      // Never expected (the tests count these): the daemon's text is the truth.
      this.fallbacks++;
      console.warn(`notes: reconciling by a diff (${e.message})`);
      out = { changes: diffChangeSet(shown.toString(), this.inboxDoc.toString()), authors: [] };
    }
    const pieces = out.authors;
    const who = (from, to) => pieces.filter((p) => p.to > from && p.from < to)
      .map((p) => ({ from: Math.max(from, p.from), to: Math.min(to, p.to), fp: p.a }));
    const tr = withRemoteAuthor(who, () => this.view.state.update({ changes: out.changes, annotations: [Transaction.remote.of(true), Transaction.addToHistory.of(false)] }));
    this.view.update([tr]);
  }

  // ---- local edits ----
  // A local edit is pushed here, before the view updates: the push leaves before the
  // editor redraws (an update listener runs after the DOM is written, about a quarter
  // of a millisecond later for one typed key), as y-codemirror's plugin sends its update.
  dispatch(trs, view) {
    if (trs.length === 1 && this.tooBig(trs[0])) return this.split(trs[0], view);
    let local = false;
    for (const tr of trs) {
      if (!tr.docChanged || tr.annotation(Transaction.remote)) continue;
      this.noteAstral(tr);
      this.pending.push({ changes: tr.changes, splices: this.splicesOf(tr.changes, tr.startState.doc, tr.state.doc) });
      local = true;
    }
    if (local) this.push();
    view.update(trs);
  }

  // The first astral character seen makes codePoints count surrogate pairs.
  noteAstral(tr) {
    if (this.astral) return;
    tr.changes.iterChanges((_a, _b, _c, _d, ins) => { if (!this.astral && hasSurrogate.test(ins.toString())) this.astral = true; });
  }

  tooBig(tr) {
    if (!tr.docChanged || tr.annotation(Transaction.remote)) return false;
    let big = false;
    tr.changes.iterChanges((_a, _b, _c, _d, ins) => { if (ins.length > INSERT_CHUNK) big = true; });
    return big;
  }

  // A huge paste becomes several edits, each small enough for one push.
  split(tr, view) {
    const parts = [];
    tr.changes.iterChanges((fromA, toA, _fB, _tB, ins) => parts.push({ from: fromA, to: toA, text: ins.toString() }));
    const userEvent = tr.annotation(Transaction.userEvent) || 'input';
    for (const p of parts.reverse()) { // from the end, so earlier positions hold
      let at = p.from, del = p.to, rest = p.text;
      while (rest.length || del > at) {
        let n = Math.min(rest.length, INSERT_CHUNK);
        if (n < rest.length && isHigh(rest.charCodeAt(n - 1))) n--;
        view.dispatch({ changes: { from: at, to: del, insert: rest.slice(0, n) }, userEvent });
        at += n; del = at; rest = rest.slice(n);
      }
    }
    view.dispatch({ selection: tr.newSelection, scrollIntoView: true });
  }

  // Code points of doc's units [from, to) (the daemon counts code points; changes never
  // split a surrogate pair).
  codePoints(doc, from, to) {
    if (!this.astral || to <= from) return to - from;
    const s = doc.sliceString(from, to);
    let n = s.length;
    for (let i = 0; i < s.length; i++) if (isHigh(s.charCodeAt(i))) n--;
    return n;
  }

  // A local change as the daemon's splices: [pos, del, text] in code points, each on
  // the text the ones before it made (the order the labels of reconcile.js follow).
  splicesOf(changes, before, after) {
    const out = [];
    changes.iterChanges((fromA, toA, fromB, _toB, ins) => {
      out.push([this.codePoints(after, 0, fromB), this.codePoints(before, fromA, toA), ins.toString()]);
    });
    return out;
  }

  // EditorView.updateListener
  viewUpdate(u) {
    let local = false;
    for (const tr of u.transactions) {
      if (!tr.docChanged) continue;
      if (tr.annotation(Transaction.remote)) this.noteAstral(tr);
      else local = true; // noted, pending and pushed in dispatch()
    }
    if (local) {
      this.scheduleSave();
      this.ui.onPending(this.pending.length);
      this.ui.onDoc();
    }
    if (local || (u.selectionSet && u.transactions.some((tr) => !tr.annotation(Transaction.remote)))) this.sendCursor();
  }

  // Each local edit goes at once, on the version this page stands on: the daemon puts
  // it on that version plus this page's edits before it, and merges.
  push() {
    if (!this.view || this.restore || !this.connected || this.blocked) return;
    // in flight: pushed and not yet acknowledged (acknowledgements wait in the inbox)
    if (this.sent >= this.pending.length || this.sent - this.inboxAcks >= MAX_IN_FLIGHT) return;
    const out = [];
    let size = 0;
    for (const p of this.pending.slice(this.sent, this.inboxAcks + MAX_IN_FLIGHT)) {
      const j = { clientID: this.clientID, splices: p.splices };
      const s = utf8Length(JSON.stringify(j));
      if (out.length && size + s > PUSH_BUDGET) break;
      out.push(j);
      size += s;
    }
    if (!this.send({ t: 'push', version: this.synced, updates: out })) return;
    this.sent += out.length;
    if (this.sent < this.pending.length) this.push(); // more than one push's worth
  }

  // A position in the daemon's text at `version` (a version this page has passed) in
  // the text shown now: through the confirmed updates since, then the local edits.
  // null when the page cannot tell (not yet there, or forgotten).
  mapFrom(version, pos, assoc = 1) {
    if (!this.view || !Number.isInteger(version) || !Number.isInteger(pos) || version < this.logStart || version > this.synced) return null;
    for (let i = version; i < this.synced; i++) {
      const d = this.log[i - this.logStart];
      pos = d.mapPos(Math.min(pos, d.length), assoc);
    }
    const pend = this.pendingDesc();
    return pend ? pend.mapPos(Math.min(pos, pend.length), assoc) : pos;
  }

  // ---- cursor and presence ----
  pendingDesc() {
    if (!this.pending.length) return null;
    let d = this.pending[0].changes.desc;
    for (let i = 1; i < this.pending.length; i++) d = d.composeDesc(this.pending[i].changes.desc);
    return d;
  }

  sendCursor(now) {
    if (!this.view) return;
    clearTimeout(this.cursorTimer);
    const go = () => {
      this.cursorTimer = 0;
      if (!this.view) return;
      const inv = this.pendingDesc()?.invertedDesc;
      const map = (p, assoc) => (inv ? inv.mapPos(p, assoc) : p);
      const ranges = this.view.state.selection.ranges.slice(0, 16).map((r) => ({ anchor: map(r.anchor, -1), head: map(r.head, -1) }));
      const msg = { t: 'cursor', version: this.synced, ranges };
      const key = JSON.stringify(ranges);
      if (!now && key === this.lastCursor) return;
      if (this.send(msg)) this.lastCursor = key;
    };
    if (now) go(); else this.cursorTimer = setTimeout(go, 50);
  }

  // Map each remote person's ranges from the version they were made at to the text
  // shown now: through the confirmed updates since, then the local unconfirmed edits.
  placePeople() {
    if (!this.view) return;
    const state = this.view.state;
    const v = this.synced;
    const pend = this.pendingDesc();
    const mine = this.me && this.me.session;
    const out = [];
    for (const p of this.people) {
      if (!p || p.session === mine || !Array.isArray(p.ranges)) continue;
      const entry = this.ui.person(p);
      if (!entry) continue;
      let ranges = p.ranges.filter((r) => r && Number.isInteger(r.anchor) && Number.isInteger(r.head));
      if (!Number.isInteger(p.version) || p.version > v || p.version < this.logStart) {
        const old = state.field(this.ui.remotesField).find((x) => x.session === p.session);
        if (old) out.push({ ...old, name: entry.name || p.name || p.fp });
        continue;
      }
      ranges = ranges.slice(0, 16).map((r) => {
        let { anchor, head } = r;
        for (let i = p.version; i < v; i++) {
          const d = this.log[i - this.logStart];
          const len = d.length;
          anchor = d.mapPos(Math.min(anchor, len), 1);
          head = d.mapPos(Math.min(head, len), 1);
        }
        if (pend) {
          anchor = pend.mapPos(Math.min(anchor, pend.length), 1);
          head = pend.mapPos(Math.min(head, pend.length), 1);
        }
        return { anchor, head };
      });
      out.push({ session: p.session, name: entry.name || p.name || p.fp, fp: p.fp, cls: entry.cls,
        ranges: clampRanges(ranges, state.doc.length) });
    }
    if (!out.length && !state.field(this.ui.remotesField).length) return; // nothing to draw or clear
    this.view.dispatch({ effects: setRemotes.of(out) });
  }

  // ---- authorship ----
  requestAuthorship() {
    this.authorshipWanted = true;
    this.send({ t: 'authorship' });
  }

  authorship(msg) {
    if (!this.view) return;
    if (msg.version !== this.synced || this.inbox.length) { // raced with updates: ask again
      setTimeout(() => this.send({ t: 'authorship' }), 100);
      return;
    }
    const authors = Array.isArray(msg.authors) ? msg.authors.map((a) => a && this.ui.person(a)) : [];
    // spans describe the confirmed text; the unconfirmed edits on top are the local person's
    let comp = null;
    for (const p of this.pending) comp = comp ? comp.compose(p.changes) : p.changes;
    const len = this.confirmedDoc.length;
    const ranges = [];
    for (const s of Array.isArray(msg.spans) ? msg.spans : []) {
      if (!Array.isArray(s) || s.length < 3) continue;
      let [from, to, ai] = s;
      if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > len || from >= to || !authors[ai]) continue;
      if (comp) { from = comp.mapPos(from, 1); to = comp.mapPos(to, -1); }
      if (to > from) ranges.push(this.ui.authorMark(authors[ai]).range(from, to));
    }
    const me = this.me && this.me.fp && this.ui.person(this.me);
    if (comp && me) {
      comp.iterChangedRanges((_fA, _tA, fB, tB) => { if (tB > fB) ranges.push(this.ui.authorMark(me).range(fB, tB)); }, true);
    }
    this.view.dispatch({ effects: setAuthorship.of(Decoration.set(ranges, true)) });
  }

  // ---- sessionStorage: unconfirmed edits survive a reload ----
  scheduleSave() {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => { this.saveTimer = 0; this.save(); }, 400);
  }

  save() {
    if (this.restore || !this.view || this.epoch == null) return;
    try {
      if (!this.pending.length) { sessionStorage.removeItem(this.storageKey); return; }
      sessionStorage.setItem(this.storageKey, JSON.stringify({
        v: 1, note: this.noteId, epoch: this.epoch, version: this.synced, text: this.confirmedDoc.toString(),
        clientID: this.clientID, acked: this.acked, pending: this.pending.map((p) => p.changes.toJSON()), saved_ms: Date.now(),
      }));
    } catch (e) {
      console.warn('notes: cannot keep unsent edits in sessionStorage:', e.message);
    }
  }

  loadStored() {
    try {
      const raw = sessionStorage.getItem(this.storageKey);
      if (!raw) return null;
      const rec = JSON.parse(raw);
      if (!rec || rec.v !== 1 || rec.note !== this.noteId || typeof rec.text !== 'string' || !Array.isArray(rec.pending) ||
          !rec.pending.length || !Number.isInteger(rec.version) || typeof rec.epoch !== 'string') return null;
      // check that the edits fit the stored text
      rec.pending.reduce((t, j) => ChangeSet.fromJSON(j).apply(t), textOf(rec.text));
      return rec;
    } catch {
      return null;
    }
  }
}
