// The WebSocket protocol of docs/web.md, spoken directly (no browser) to daemon A:
// hello, push/updates (taken at any version the daemon had, and merged),
// pull, cursor/presence, authorship, history/at, and the limits that close the
// connection with 1008 while leaving the text untouched.
import WebSocket from 'ws';
import { check, until, sleep } from './lib.mjs';
import { cookieFrom } from './csp.mjs';

class Client {
  constructor(url, cookie, origin) {
    this.msgs = [];
    this.waiters = [];
    this.ws = new WebSocket(url, { headers: { Cookie: cookie, Origin: origin }, maxPayload: 256 << 20 });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      this.msgs.push(m);
      this.waiters = this.waiters.filter((w) => !(w.f(m) && (w.resolve(m), true)));
    });
    this.ws.on('error', () => {});
  }
  opened() { return new Promise((resolve, reject) => { this.ws.once('open', resolve); this.ws.once('error', reject); }); }
  send(o) { this.ws.send(typeof o === 'string' ? o : JSON.stringify(o)); }
  next(f, ms = 5000) {
    const old = this.msgs.find(f);
    if (old) { this.msgs.splice(this.msgs.indexOf(old), 1); return Promise.resolve(old); }
    return new Promise((resolve, reject) => {
      const w = { f, resolve: (m) => { this.msgs.splice(this.msgs.indexOf(m), 1); resolve(m); } };
      this.waiters.push(w);
      setTimeout(() => reject(new Error('no such message in time')), ms);
    });
  }
  drain() { this.msgs = []; }
  close() { try { this.ws.close(); } catch { /* closed */ } }
}

const CID = 'protocolTest0001';

// Apply a ChangeSet in its JSON form (docs/web.md) to a string.
function applyJSON(text, cs) {
  let out = '', pos = 0;
  for (const s of cs) {
    if (typeof s === 'number') { out += text.slice(pos, pos + s); pos += s; continue; }
    pos += s[0];
    out += s.slice(1).join('\n');
  }
  return pos === text.length ? out : null;
}

export default async function protocol(ctx) {
  const { note } = ctx;
  const r = [];
  const u = new URL(note.urlA);
  const { cookie } = await cookieFrom(note.urlA);
  const wsUrl = `ws://${u.host}/ws?note=${note.id}&v=1`;
  const open = async () => { const c = new Client(wsUrl, cookie, u.origin); await c.opened(); return c; };

  const c = await open();
  const hello = await c.next((m) => m.t === 'hello');
  check(r, hello.v === 1 && typeof hello.epoch === 'string' && hello.epoch && hello.note === note.id && Number.isInteger(hello.version) &&
    typeof hello.text === 'string', 'hello: v, epoch, note, version, text', hello && { ...hello, text: undefined });
  const me = hello.me || {};
  check(r, typeof me.session === 'string' && /^nk[a-z2-7]{52}$/.test(me.key || '') && /^[a-z2-7]{4}-[a-z2-7]{4}$/.test(me.fp || '') &&
    typeof me.name === 'string' && /^#[0-9a-f]{6}$/i.test(me.color || ''), 'hello.me: session, key, fingerprint, name, colour', me);
  const items = await c.next((m) => m.t === 'items').catch(() => null);
  check(r, items && Array.isArray(items.items), 'items sent on connect', items);
  const status = await c.next((m) => m.t === 'status').catch(() => null);
  check(r, status && Number.isInteger(status.peers) && typeof status.online === 'boolean' && Number.isInteger(status.unsent),
    'status sent on connect', status);

  // push at the current version (splices in code points): stored, broadcast back with our
  // clientID and author, the last update of the push carrying "acks"
  const cps = (t) => [...t].length;
  let v = hello.version;
  let text = hello.text;
  const ins = '\nprotocol: é 日本語 😀';
  c.send({ t: 'push', version: v, updates: [{ clientID: CID, splices: [[cps(text), 0, ins]] }] });
  const up = await c.next((m) => m.t === 'updates' && m.version === v).catch(() => null);
  check(r, up && up.updates.length === 1 && up.updates[0].clientID === CID && up.updates[0].author === me.fp && up.updates[0].acks === 1 &&
    JSON.stringify(up.updates[0].changes) === JSON.stringify([text.length, [0, ...ins.split('\n')]]), 'an accepted push comes back in "updates" with "acks"', up);
  text += ins;
  v += 1;
  // pull
  c.send({ t: 'pull', version: v - 1 });
  const pulled = await c.next((m) => m.t === 'updates' && m.version === v - 1).catch(() => null);
  check(r, pulled && pulled.updates.length === 1 && pulled.updates[0].clientID === CID, 'pull answers the updates since a version', pulled);
  // pipelined pushes: both on version v, the second on top of the first (the daemon takes
  // this page's own earlier pushes as part of the version)
  c.send({ t: 'push', version: v, updates: [{ clientID: CID, splices: [[cps(text), 0, '+1']] }] });
  c.send({ t: 'push', version: v, updates: [{ clientID: CID, splices: [[cps(text) + 2, 0, '+2']] }] });
  const p1 = await c.next((m) => m.t === 'updates' && m.version === v).catch(() => null);
  const p2 = await c.next((m) => m.t === 'updates' && m.version === v + 1).catch(() => null);
  check(r, p1 && p2 && p2.updates[0].clientID === CID && p2.updates[0].acks === 1, 'a pipelined push is taken on top of the one before it', { p1, p2 });
  text += '+1+2';
  v += 2;
  // a second connection sees the text and our cursor
  const d = await open();
  const hello2 = await d.next((m) => m.t === 'hello');
  check(r, hello2.text === text && hello2.version === v && hello2.epoch === hello.epoch && hello2.me.session !== me.session,
    'a second connection: same text, version and epoch, its own session', { v: hello2.version });
  c.send({ t: 'cursor', version: v, ranges: [{ anchor: 3, head: 5 }] });
  const pres = await d.next((m) => m.t === 'presence' && m.people.some((p) => p.session === me.session && p.ranges.length && p.ranges[0].head === 5)).catch(() => null);
  const pc = pres && pres.people.find((p) => p.session === me.session);
  check(r, pc && pc.name === me.name && pc.fp === me.fp && pc.version === v && pc.ranges[0].anchor === 3, 'cursor → presence for the others', pres);
  // authorship spans cover the text
  c.send({ t: 'authorship' });
  const au = await c.next((m) => m.t === 'authorship').catch(() => null);
  let covered = 0, okSpans = !!au;
  if (au) for (const [f, t, a] of au.spans) { if (f !== covered || t <= f || !au.authors[a]) okSpans = false; covered = t; }
  // authors are people: this device is listed among its person's devices (docs/web.md, "People")
  const mine = au && au.authors.find((a) => a.fp === me.fp || (Array.isArray(a.devices) && a.devices.some((x) => x && x.fp === me.fp)));
  check(r, au && au.version === v && okSpans && covered === text.length && mine,
    'authorship: spans over the whole text, each with an author', au && { version: au.version, spans: au.spans.length, covered, len: text.length });
  if (me.person) check(r, mine && mine.fp === me.person.fp, "authorship: this device's text is its person's", { mine, person: me.person });
  // history and at (after the daemon committed the burst: it commits after a pause)
  await sleep(1500);
  c.send({ t: 'history' });
  const hist = await c.next((m) => m.t === 'history').catch(() => null);
  check(r, hist && hist.changes.length >= 1 && hist.changes.every((h, i) => h.index === i && /^[0-9a-f]{64}$/.test(h.id) && h.fp && Number.isInteger(h.time_ms)),
    'history: the changes, in order', hist && hist.changes.slice(-2));
  if (hist && hist.changes.length) {
    const last = hist.changes.length - 1;
    c.send({ t: 'at', index: last });
    const at = await c.next((m) => m.t === 'at').catch(() => null);
    check(r, at && at.index === last && at.text === text, 'at(last change) is the current text', at && at.text.length);
  }
  // a push on an old version is not stale: another page, still at the version of the
  // first hello (before all of the above), types at the end of the text it has; it is merged, not refused
  const V0 = hello.version;
  const OLDER = 'protocolTest0003';
  const before = text.slice(0, text.length - ins.length - 4);
  c.send({ t: 'push', version: V0, updates: [{ clientID: OLDER, splices: [[cps(before), 0, 'OLD'], [cps(before) + 1, 1, 'l']] }] });
  const po = await c.next((m) => m.t === 'updates' && m.version === v).catch(() => null);
  const merged = po && po.updates.reduce((t, x) => applyJSON(t, x.changes), text);
  check(r, po && po.updates.every((x) => x.clientID === OLDER) && po.updates[po.updates.length - 1].acks === 1 && merged &&
    !merged.includes('OLD') && merged.includes('OlD') && merged.includes(ins + '+1+2') && merged.length === text.length + 3,
    'a push on an old version is merged with what came since (both whole)', { po, merged });
  text = merged || text;
  v += po ? po.updates.length : 0;
  c.close();
  d.close();

  // limits: each closes with 1008, the text untouched
  const bad = [
    ['invalid JSON', '{"t":"push",'],
    ['an unknown type', { t: 'launch-missiles' }],
    ['a push from the future', { t: 'push', version: v + 5, updates: [{ clientID: CID, splices: [[cps(text), 0, 'x']] }] }],
    ['a pull from the future', { t: 'pull', version: v + 5 }],
    ['a splice past the end of its text', { t: 'push', version: v, updates: [{ clientID: CID, splices: [[cps(text) + 1, 0, 'x']] }] }],
    ['a splice past the end of its version\'s text', { t: 'push', version: hello.version, updates: [{ clientID: 'protocolTest0004', splices: [[cps(hello.text) + 1, 0, 'x']] }] }],
    ['a deletion past the end', { t: 'push', version: v, updates: [{ clientID: CID, splices: [[2, cps(text), '']] }] }],
    ['a negative position', { t: 'push', version: v, updates: [{ clientID: CID, splices: [[-1, 0, 'x']] }] }],
    ['a splice that is not [pos, del, text]', { t: 'push', version: v, updates: [{ clientID: CID, splices: [[0, 0]] }] }],
    ['an update without splices', { t: 'push', version: v, updates: [{ clientID: CID, changes: [text.length, [0, 'x']] }] }],
    ['two clientIDs in one push', { t: 'push', version: v, updates: [{ clientID: CID, splices: [] }, { clientID: 'protocolTest0005', splices: [] }] }],
    ['a lone surrogate', '{"t":"push","version":' + v + ',"updates":[{"clientID":"' + CID + '","splices":[[0,0,"\\ud800"]]}]}'],
    ['a NUL character', { t: 'push', version: v, updates: [{ clientID: CID, splices: [[0, 0, 'a\u0000b']] }] }],
    ['a malformed resolve', { t: 'resolve', line: 'one', merged: 'x', change: 'nothex' }],
    ['a message over 1 MiB', { t: 'push', version: v, updates: [{ clientID: CID, splices: [[0, 0, 'x'.repeat((1 << 20) + 10)]] }] }],
  ];
  for (const [what, msg] of bad) {
    const x = await open();
    await x.next((m) => m.t === 'hello');
    x.send(msg);
    const closed = await Promise.race([x.closed, sleep(5000).then(() => null)]);
    check(r, closed && closed.code === 1008, `${what}: closed with 1008`, closed);
    x.close();
  }
  const y = await open();
  const h3 = await y.next((m) => m.t === 'hello');
  check(r, h3.text === text && h3.version === v, 'after all that, the text and version are untouched', { v: h3.version });
  y.close();
  return r;
}
