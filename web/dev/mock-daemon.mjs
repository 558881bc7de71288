#!/usr/bin/env node
// A mock of `notes serve`'s page side (docs/web.md), for developing and testing the
// page only: never shipped. In-memory notes, no signatures, no CRDT; the HTTP and
// WebSocket surface is meant to be the real daemon's, byte for byte where it
// matters (headers, token cookie, limits, close codes, message shapes).
//
//   node web/dev/mock-daemon.mjs [--port 0] [--name Ana] [--token T] [--samples DIR]
//        [--link http://127.0.0.1:P/?token=T] [--bot MS] [--lag MS] [--commit-ms 300]
//
// Prints one JSON line when listening: {"url","port","token","name","fp","key"}.
// --exit-with-stdin: exit when stdin closes (a test runner that dies takes it along).
// --link makes this instance a remote peer of another one: the other is the
// authority for every note, this one a collab client of it (it keeps working when
// the link is down and rebases when it comes back), like two laptops syncing.
// --bot MS: a simulated remote person typing into every open note every MS ms.
// Mock-only endpoints (same cookie or ?token=): GET /dev/text?note=ID, GET /dev/state,
// POST /dev/restart, POST /dev/stall?ms=N (page messages wait), POST /dev/link?up=0|1, POST /dev/offline?on=0|1,
// POST /dev/bot?note=ID&name=NAME&ms=MS, POST /dev/drop?note=ID (close the pages' sockets).
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, WebSocket } from 'ws';
import { ChangeSet, Text } from '@codemirror/state';
import { diffChangeSet } from '../src/diff.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def; };
const PORT = Number(opt('port', process.env.PORT || 0));
const NAME = opt('name', 'Ana');
const TOKEN = opt('token', crypto.randomBytes(24).toString('base64url'));
const DIST = path.resolve(opt('dist', path.join(here, '..', 'dist')));
const SAMPLES = opt('samples', null);
const LINK = opt('link', null);
const BOT_MS = Number(opt('bot', 0));
const LAG = Number(opt('lag', 0));
const COMMIT_MS = Number(opt('commit-ms', 300));
const QUIET = argv.includes('--quiet');

const MAX_MSG = 1 << 20; // a page message over 1 MiB closes the connection
const MAX_MD = 8 << 20; // NOTES_MD_MAX_BYTES
const MAX_BODY = 20 << 20;
const PROTOCOL = 1;
let unsent = 0; // local changes not yet sent to a peer
let lastSync = 0;
let offline = false;
let stallUntil = 0; // /dev/stall: page messages wait until then
let linkServer = null; // set once listening
let linkClient = null;
const log = (...a) => { if (!QUIET) console.error(`[mock ${NAME}]`, ...a); };

// ---------- identities ----------
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
function base32(buf) {
  let bits = 0, v = 0, out = '';
  for (const b of buf) { v = (v << 8) | b; bits += 8; while (bits >= 5) { out += B32[(v >>> (bits - 5)) & 31]; bits -= 5; } }
  if (bits) out += B32[(v << (5 - bits)) & 31];
  return out;
}
const PALETTE = ['#d1495b', '#2e86ab', '#3a7d44', '#8e44ad', '#e07a1f', '#00897b',
  '#c2185b', '#5c6bc0', '#6d4c41', '#7cb342', '#0097a7', '#f4511e'];
function fnv1a(s) { let x = 0x811c9dc5; for (let i = 0; i < s.length; i++) { x ^= s.charCodeAt(i); x = Math.imul(x, 0x01000193) >>> 0; } return x >>> 0; }
function identity(name) {
  const pk = crypto.randomBytes(32);
  const f = base32(crypto.createHash('sha256').update(pk).digest().subarray(0, 5));
  const fp = `${f.slice(0, 4)}-${f.slice(4, 8)}`;
  return { name, key: `nk${base32(pk)}`, fp, color: PALETTE[fnv1a(fp) % PALETTE.length] };
}
const ME = identity(NAME);
const persons = new Map([[ME.fp, ME]]); // fp → {name, key, fp, color}
const person = (fp) => persons.get(fp) || { name: null, key: null, fp, color: PALETTE[fnv1a(fp) % PALETTE.length] };

const rid = (n = 16) => crypto.randomBytes(n).toString('hex');
const textOf = (s) => Text.of(String(s).split('\n'));
const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;
function wellFormed(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isHigh(c)) { if (!isLow(s.charCodeAt(i + 1))) return false; i++; } else if (isLow(c)) return false;
  }
  return true;
}

// ---------- notes ----------
const notes = new Map();

function parseMarkdown(md) {
  // the front matter subset the samples use: "key: value", "key:" + "- item" lists
  const fields = {};
  let body = md;
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?/.exec(md);
  if (m) {
    body = md.slice(m[0].length);
    let list = null;
    for (const line of m[1].split(/\r?\n/)) {
      const item = /^\s*-\s+(.*)$/.exec(line);
      if (item && list) { fields[list].push(unq(item[1])); continue; }
      const kv = /^([A-Za-z0-9_-]+):\s*(.*)$/.exec(line);
      if (!kv) continue;
      if (kv[2] === '') { list = kv[1]; fields[list] = []; } else { list = null; fields[kv[1]] = unq(kv[2]); }
    }
  }
  return { fields, body };
}
function unq(s) { const t = s.trim(); return /^".*"$/.test(t) ? t.slice(1, -1).replace(/\\"/g, '"') : t; }

class Note {
  constructor(id, fields, text, by = ME) {
    this.id = id;
    this.fields = fields;
    this.text = textOf(text);
    this.epoch = rid(8);
    this.updates = []; // this epoch's list: {clientID, changes (JSON), author, text after it}
    this.taken = new Map(); // clientID → its updates committed, across restarts (hello.taken)
    this.origin = Text.empty; // history replays allUpdates from here
    this.all = []; // every update since creation: {cs, author, time}
    this.changes = []; // committed changes: {index, id, fp, name, time_ms, upTo}
    this.runs = []; // authorship: [len, fp, updateIndex]
    this.confirms = []; // {id, text, owner, fp}: confirmations made here (not synced to linked mocks)
    this.committedUpTo = 0;
    this.dirty = new Set(); // authors with uncommitted updates
    this.conns = new Set();
    this.remotePeople = new Map(); // session → person record from a linked peer or a bot
    this.updated_ms = Date.now();
    this.commitTimer = null;
    this.presenceTimer = null;
    this.link = null; // client state when this instance is linked to an authority
    if (text) this.record(ChangeSet.of([{ from: 0, insert: text }], 0), by.fp, { initial: true });
    this.text = textOf(text);
    this.epochText = this.text; // the text at version 0 of this epoch
    this.commit();
  }

  // the text at version v of this epoch (Text shares what did not change: cheap to keep)
  textAtVersion(v) { return v === 0 ? this.epochText : this.updates[v - 1].text; }

  get version() { return this.updates.length; }

  // every accepted change goes through here (already validated, applies to this.text)
  record(cs, author, { initial = false } = {}) {
    const idx = this.all.length;
    this.all.push({ cs, author, time: Date.now() });
    this.runs = applyRuns(this.runs, cs, author, idx);
    if (!initial) this.text = cs.apply(this.text);
    this.updated_ms = Date.now();
    this.dirty.add(author);
    clearTimeout(this.commitTimer);
    if (this.all.length - this.committedUpTo >= 1000) this.commit();
    else this.commitTimer = setTimeout(() => { this.commit(); this.sendItems(); }, COMMIT_MS);
  }

  // a burst becomes one "signed change" per author (the mock signs nothing)
  commit() {
    clearTimeout(this.commitTimer);
    this.commitTimer = null;
    if (!this.dirty.size) return;
    for (const fp of this.dirty) {
      const p = person(fp);
      this.changes.push({ index: this.changes.length, id: rid(32), fp, name: p.name, time_ms: Date.now(), upTo: this.all.length });
      if (fp === ME.fp) unsent++;
    }
    this.dirty.clear();
    this.committedUpTo = this.all.length;
    sendStatusAll();
  }

  // append updates to this epoch's list and broadcast them
  append(list) {
    const from = this.version;
    for (const u of list) {
      this.record(u.cs, u.author);
      this.updates.push({ clientID: u.clientID, changes: u.cs.toJSON(), author: u.author, cs: u.cs, text: this.text,
        pageCs: u.pageCs || null, acks: u.acks || 0 });
    }
    const msg = JSON.stringify({ t: 'updates', version: from, updates: this.updates.slice(from).map(wireUpdate) });
    for (const c of this.conns) c.sendRaw(msg);
    if (linkServer) linkServer.broadcast(this, from);
    this.scheduleItems();
    this.reshapePresence();
  }

  scheduleItems() {
    clearTimeout(this.itemsTimer);
    this.itemsTimer = setTimeout(() => this.sendItems(), 150);
  }

  sendItems() {
    const msg = JSON.stringify({ t: 'items', items: outline(this), unattached_confirmations: [] });
    if (msg === this.lastItems) return;
    this.lastItems = msg;
    for (const c of this.conns) c.sendRaw(msg);
  }

  people() {
    const out = [];
    for (const c of this.conns) {
      out.push({ session: c.session, name: ME.name, fp: ME.fp, key: ME.key, color: ME.color,
        ranges: c.cursor ? c.cursor.ranges : [], version: c.cursor ? c.cursor.version : this.version });
    }
    for (const p of this.remotePeople.values()) {
      if (p.version > this.version) continue;
      const who = person(p.fp);
      out.push({ session: p.session, name: who.name, fp: p.fp, key: who.key, color: who.color, ranges: p.ranges, version: p.version, remote: true });
    }
    return out;
  }

  reshapePresence() { if (this.link) this.link.remapPeople(); }

  schedulePresence() {
    if (this.presenceTimer) return;
    this.presenceTimer = setTimeout(() => {
      this.presenceTimer = null;
      const msg = JSON.stringify({ t: 'presence', people: this.people() });
      for (const c of this.conns) c.sendRaw(msg);
      if (linkServer) linkServer.sendPeople(this);
      if (this.link) this.link.sendPeople();
    }, 25);
  }

  textAt(index) {
    const upTo = this.changes[index].upTo;
    let t = this.origin;
    for (let i = 0; i < upTo; i++) t = this.all[i].cs.apply(t);
    return t.toString();
  }

  // a new epoch: what a daemon restart looks like to the pages
  restart() {
    this.commit();
    this.epoch = rid(8);
    this.updates = [];
    this.epochText = this.text;
    for (const c of this.conns) c.ws.close(1012, 'daemon restart');
    if (linkServer) linkServer.restart(this);
  }
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const wireUpdate = (u) => ({ clientID: u.clientID, changes: u.changes, author: u.author, ...(u.acks ? { acks: u.acks } : {}) });

function pushRun(out, len, fp, u) {
  if (!len) return;
  const last = out[out.length - 1];
  if (last && last[1] === fp && last[2] === u) last[0] += len; else out.push([len, fp, u]);
}
function applyRuns(runs, cs, author, u) {
  const out = [];
  let ri = 0, roff = 0, pos = 0;
  const take = (n, keep) => {
    while (n > 0 && ri < runs.length) {
      const r = runs[ri];
      const k = Math.min(r[0] - roff, n);
      if (keep) pushRun(out, k, r[1], r[2]);
      n -= k; roff += k;
      if (roff === r[0]) { ri++; roff = 0; }
    }
  };
  cs.iterChanges((fromA, toA, _fB, _tB, ins) => {
    take(fromA - pos, true);
    take(toA - fromA, false);
    pushRun(out, ins.length, author, u);
    pos = toA;
  });
  take(Infinity, true);
  return out;
}

// decisions and action items, after docs/formats.md (simplified)
const NOT_INITIALS = new Set(['TBD', 'FYI', 'WIP', 'ETA', 'AOB', 'TODO', 'OK', 'PR', 'CI', 'QA', 'API', 'UI']);
function fold(s) { return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase(); }
function initialsOf(name) {
  const f = name.normalize('NFD').replace(/[\u0300-\u036f]/g, '');
  let out = f[0] || '';
  for (let i = 1; i < f.length; i++) {
    const c = f[i], p = f[i - 1];
    if (/[A-Z]/.test(c) && /[a-z]/.test(p)) out += c;
    else if (/[ \-._]/.test(p) && /[A-Za-z]/.test(c)) out += c.toUpperCase();
  }
  return out.toUpperCase();
}
function resolveOwner(who, participants) {
  const names = who.split(/\s*(?:\/|,|&|\+|\band\b)\s*/).filter(Boolean);
  if (!names.length) return null;
  const out = [];
  for (const n of names) {
    if (/^(everyone|everybody|all)$/i.test(n)) { out.push(n); continue; }
    const p = participants.find((x) => fold(x) === fold(n));
    if (p) { out.push(p); continue; }
    if (/^[A-Z]{2,3}$/.test(n) && !NOT_INITIALS.has(n)) {
      const m = participants.filter((x) => initialsOf(x) === n);
      out.push(m.length === 1 ? m[0] : n);
      continue;
    }
    return null;
  }
  return out.join(', ');
}
function outline(note) {
  const text = note.text.toString();
  const participants = Array.isArray(note.fields.participants) ? note.fields.participants : [];
  const items = [];
  let fence = false, decLevel = 0, cur = null, off = 0, section = null;
  const close = () => { if (cur) { items.push(cur); cur = null; } };
  const start = (kind, body, at, done) => {
    close();
    let owner = null, written = null;
    const om = /^([^:\n]{1,40}):(?:\s|$)/.exec(body);
    if (om) { const r = resolveOwner(om[1].trim(), participants); if (r) { owner = r; written = om[1].trim(); body = body.slice(om[0].length); } }
    cur = { kind, text: body.trim(), owner, owner_as_written: written, done: kind === 'task' ? done : null, section, offset: at };
  };
  for (const line of text.split('\n')) {
    const at = off;
    off += line.length + 1;
    if (/^\s*(```|~~~)/.test(line)) { fence = !fence; close(); continue; }
    if (fence) continue;
    const hm = /^(#{1,6})\s+(.*)$/.exec(line);
    if (hm) {
      close();
      const level = hm[1].length;
      if (decLevel && level <= decLevel) decLevel = 0;
      const words = hm[2].replace(/:[a-z0-9_+-]+:/g, '').toLowerCase();
      if (!decLevel && /\b(decisions?|todos?|to do|tasks?|action (items?|points?))\b/.test(words)) { decLevel = level; section = hm[2].replace(/:[a-z0-9_+-]+:/g, '').trim(); }
      continue;
    }
    const tm = /^(\s*[-*+]\s+)\[([ xX])\]\s+(.*)$/.exec(line);
    if (tm) { start('task', tm[3], at + tm[1].length + 4, tm[2] !== ' '); continue; }
    if (!decLevel) { close(); continue; }
    if (!line.trim()) { close(); continue; }
    const lm = /^(\s*(?:[-*+]|\d+[.)])\s+)(.*)$/.exec(line);
    if (lm) { start('decision', lm[2], at + lm[1].length); continue; }
    if (!cur || /^[^\s:]{1,40}:(\s|$)/.test(line)) { start('decision', line, at); continue; }
    cur.text += `\n${line.trim()}`;
  }
  close();
  return items.map((it) => {
    let fp = null, u = -1, pos = 0;
    for (const r of note.runs) { if (pos + r[0] > it.offset) { fp = r[1]; u = r[2]; break; } pos += r[0]; }
    // The daemon's id is the CRDT id of the first character; the mock's is its run and
    // offset in the run (stable while nothing is typed before the item in that run).
    const id = fp ? crypto.createHash('sha256').update(`${u}:${it.offset - pos}`).digest('hex').slice(0, 16) : null;
    const confirmations = id ? note.confirms.filter((c) => c.id === id).map((c) => ({
      by: who(c.fp), item: id, text: c.text, owner: c.owner || null,
      state: c.text === it.text && (c.owner || null) === (it.owner || null) ? 'confirmed' : 'changed', counted: false })) : [];
    const seen = new Set();
    for (const c of confirmations) if (c.state === 'confirmed' && !seen.has(c.by.fp)) { seen.add(c.by.fp); c.counted = true; }
    return { kind: it.kind, id, text: it.text, owner: it.owner, owner_as_written: it.owner_as_written, done: it.done,
      section: it.section, line: text.slice(0, it.offset).split('\n').length,
      recorded_by: fp ? who(fp) : null, edited_by: [],
      verified: u >= 0 && u < note.committedUpTo, confirmations, confirmed_by: seen.size };
  });
}

// A key as the daemon shows it (docs/web.md, "People"): the mock's people are
// persons of one device each; only this mock's own is "known".
function who(fp) {
  const p = person(fp);
  return { name: p.name, fp: p.fp, fingerprint: p.fp, key: p.key, color: p.color, known: fp === ME.fp, linked: true,
    mine: fp === ME.fp, device: { fp: p.fp, key: p.key, name: p.name } };
}

function authorship(note) {
  const authors = [], index = new Map(), spans = [];
  let pos = 0;
  for (const [len, fp] of note.runs) {
    if (!index.has(fp)) { index.set(fp, authors.length); const p = person(fp); authors.push({ fp, name: p.name, key: p.key, color: p.color }); }
    const ai = index.get(fp);
    const last = spans[spans.length - 1];
    if (last && last[2] === ai && last[1] === pos) last[1] += len; else spans.push([pos, pos + len, ai]);
    pos += len;
  }
  return { t: 'authorship', version: note.version, authors, spans };
}

function createNote(fields, body, by = ME, id = rid(16)) {
  const n = new Note(id, fields, body, by);
  notes.set(id, n);
  return n;
}

if (SAMPLES) {
  for (const f of fs.readdirSync(SAMPLES).filter((x) => x.endsWith('.md')).sort()) {
    const { fields, body } = parseMarkdown(fs.readFileSync(path.join(SAMPLES, f), 'utf8'));
    const id = crypto.createHash('sha256').update(f).digest('hex').slice(0, 32); // same id on every instance
    createNote(fields, body, ME, id);
  }
}

// ---------- status ----------
function statusMsg() {
  const peers = (linkClient && linkClient.up ? 1 : 0) + (linkServer ? linkServer.count() : 0);
  return JSON.stringify({ t: 'status', peers: offline ? 0 : peers, online: !offline, unsent, last_sync_ms: lastSync || null });
}
function sendStatusAll() {
  if ((linkClient && linkClient.up) || (linkServer && linkServer.count())) { unsent = 0; lastSync = Date.now(); }
  const msg = statusMsg();
  for (const n of notes.values()) for (const c of n.conns) c.sendRaw(msg);
}

// ---------- HTTP ----------
const COOKIE = `notes_${PORT || 'x'}`; // replaced once the port is known (cookies ignore ports)
let cookieName = COOKIE;
let origins = new Set();
let hosts = new Set();

function csp(nonce) {
  return ["default-src 'none'", "script-src 'self'", `style-src 'self'${nonce ? ` 'nonce-${nonce}'` : ''}`,
    "img-src 'self' data:", "font-src 'self'", "connect-src 'self'", "base-uri 'none'", "form-action 'none'",
    "frame-ancestors 'none'"].join('; ');
}
function headers(extra = {}, nonce = null) {
  return {
    'Content-Security-Policy': csp(nonce), 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY', 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Resource-Policy': 'same-origin',
    ...extra,
  };
}
function send(res, status, body, type, extra = {}, nonce = null) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(status, headers({ 'Content-Type': type, 'Content-Length': buf.length, ...extra }, nonce));
  res.end(buf);
}
const json = (res, status, obj) => send(res, status, JSON.stringify(obj), 'application/json; charset=utf-8', { 'Cache-Control': 'no-store' });
const jerr = (res, status, message) => json(res, status, { error: message });

function cookieOk(req) {
  const c = req.headers.cookie || '';
  for (const part of c.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === cookieName && tokenEq(v.join('='))) return true;
  }
  return false;
}
function tokenEq(t) {
  const a = Buffer.from(String(t)), b = Buffer.from(TOKEN);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => { n += c.length; if (n > limit) { reject(Object.assign(new Error('request too large'), { status: 413 })); req.destroy(); } else chunks.push(c); });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// The daemon's one page (dist/page.html) with its placeholders filled.
function shell(page, cli) {
  const nonce = crypto.randomBytes(16).toString('base64');
  const html = fs.readFileSync(path.join(DIST, 'page.html'), 'utf8')
    .replaceAll('{{NONCE}}', nonce).replaceAll('{{PAGE}}', page).replaceAll('{{CLI}}', cli);
  return { html, nonce };
}

function noteList() {
  return [...notes.values()].sort((a, b) => b.updated_ms - a.updated_ms).map((n) => ({
    id: n.id, title: n.fields.title ?? null, datetime: n.fields.datetime ?? null, updated_ms: n.updated_ms, changes: n.changes.length,
  }));
}

function nowIso() {
  const d = new Date(), off = -d.getTimezoneOffset(), s = off >= 0 ? '+' : '-', a = Math.abs(off);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}${s}${p(Math.floor(a / 60))}:${p(a % 60)}`;
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  if (!hosts.has(req.headers.host || '')) return send(res, 421, 'wrong Host\n', 'text/plain; charset=utf-8');
  if (url.searchParams.has('token')) {
    if (!tokenEq(url.searchParams.get('token'))) return send(res, 403, 'forbidden\n', 'text/plain; charset=utf-8');
    url.searchParams.delete('token');
    const rest = url.searchParams.toString();
    if (url.pathname.startsWith('/dev/')) { /* dev endpoints accept the token directly */ } else {
      return send(res, 303, '', 'text/plain; charset=utf-8', {
        Location: url.pathname + (rest ? `?${rest}` : ''),
        'Set-Cookie': `${cookieName}=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`, 'Cache-Control': 'no-store',
      });
    }
  } else if (!cookieOk(req)) {
    return send(res, 403, 'forbidden: open the address that `notes open` printed\n', 'text/plain; charset=utf-8');
  }
  const p = url.pathname;
  if (req.method === 'POST') {
    const origin = req.headers.origin;
    if (!p.startsWith('/dev/') && (!origin || !origins.has(origin))) return jerr(res, 403, 'cross-origin request refused');
    const type = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    if (!p.startsWith('/dev/') && type !== 'application/json') return jerr(res, 415, 'Content-Type must be application/json');
  }
  try {
    if (req.method === 'GET' && p === '/') { const s = shell('index', '<code>notes list</code>, <code>notes show</code>'); return send(res, 200, s.html, 'text/html; charset=utf-8', { 'Cache-Control': 'no-store' }, s.nonce); }
    if (req.method === 'GET' && /^\/n\/[0-9a-f]{32}$/.test(p)) {
      if (!notes.has(p.slice(3))) return send(res, 404, 'no such note\n', 'text/plain; charset=utf-8');
      const s = shell('note', '<code>notes edit</code>');
      return send(res, 200, s.html, 'text/html; charset=utf-8', { 'Cache-Control': 'no-store' }, s.nonce);
    }
    if (req.method === 'GET' && (p === '/assets/app.js' || p === '/assets/preview.js' || p === '/assets/app.css')) {
      const body = fs.readFileSync(path.join(DIST, path.basename(p)));
      return send(res, 200, body, p.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8', { 'Cache-Control': 'no-cache' });
    }
    if (p === '/api/notes' && req.method === 'GET') return json(res, 200, { v: 1, notes: noteList() });
    if (p === '/api/notes' && req.method === 'POST') {
      const b = JSON.parse(await readBody(req, 64 << 10));
      if (!b || typeof b !== 'object' || (b.template != null && b.template !== 'meeting')) return jerr(res, 400, 'unknown template');
      if (typeof b.title !== 'string' || !b.title.trim() || b.title.length > 200) return jerr(res, 400, 'a title of 1 to 200 characters is needed');
      const n = createNote({ title: b.title.trim(), datetime: nowIso(), participants: [ME.name] }, '## Agenda\n\n## Discussions\n\n## TODOs and Decisions\n');
      if (linkClient) linkClient.announce(n);
      if (linkServer) linkServer.announce(n);
      return json(res, 201, { id: n.id });
    }
    if (p === '/api/import' && req.method === 'POST') {
      const b = JSON.parse(await readBody(req, MAX_BODY));
      if (!b || typeof b.markdown !== 'string') return jerr(res, 400, 'markdown missing');
      if (Buffer.byteLength(b.markdown) > MAX_MD) return jerr(res, 413, 'larger than 8 MiB');
      if (!wellFormed(b.markdown)) return jerr(res, 400, 'invalid UTF-8');
      const { fields, body } = parseMarkdown(b.markdown);
      const n = createNote(fields, body);
      if (linkClient) linkClient.announce(n);
      if (linkServer) linkServer.announce(n);
      return json(res, 201, { id: n.id });
    }
    if (p.startsWith('/api/')) return jerr(res, req.method === 'GET' || req.method === 'POST' ? 404 : 405, 'no such API');
    if (p.startsWith('/dev/')) return dev(req, res, url);
    return send(res, 404, 'not found\n', 'text/plain; charset=utf-8');
  } catch (e) {
    if (e.status) return jerr(res, e.status, e.message);
    if (e instanceof SyntaxError) return jerr(res, 400, 'invalid JSON');
    log('error', e);
    return jerr(res, 500, 'internal error');
  }
}

function dev(req, res, url) {
  const p = url.pathname;
  const note = notes.get(url.searchParams.get('note') || '');
  if (p === '/dev/text' && note) return send(res, 200, note.text.toString(), 'text/plain; charset=utf-8', { 'Cache-Control': 'no-store' });
  if (p === '/dev/state') {
    return json(res, 200, { name: ME.name, fp: ME.fp, link: linkClient ? linkClient.up : null, peers: linkServer ? linkServer.count() : 0,
      notes: [...notes.values()].map((n) => ({ id: n.id, title: n.fields.title, version: n.version, epoch: n.epoch, conns: n.conns.size, length: n.text.length,
        linkPending: n.link ? n.link.pending.length : 0, changes: n.changes.length })) });
  }
  if (req.method !== 'POST') return jerr(res, 405, 'POST');
  if (p === '/dev/stall') { stallUntil = Date.now() + Number(url.searchParams.get('ms') || 1000); return json(res, 200, { ok: true }); }
  if (p === '/dev/restart') { for (const n of notes.values()) n.restart(); return json(res, 200, { ok: true }); }
  if (p === '/dev/drop' && note) { for (const c of note.conns) c.ws.terminate(); return json(res, 200, { ok: true }); }
  if (p === '/dev/link') { if (!linkClient) return jerr(res, 400, 'not linked'); linkClient.setEnabled(url.searchParams.get('up') !== '0'); return json(res, 200, { ok: true }); }
  if (p === '/dev/offline') { offline = url.searchParams.get('on') !== '0'; sendStatusAll(); return json(res, 200, { ok: true }); }
  if (p === '/dev/bot' && note) {
    startBot(note, url.searchParams.get('name') || 'Bot', Number(url.searchParams.get('ms') || 400), url.searchParams.get('text'));
    return json(res, 200, { ok: true });
  }
  return jerr(res, 404, 'no such dev endpoint');
}

// ---------- WebSocket: pages ----------
class PageConn {
  constructor(ws, note) {
    this.ws = ws;
    this.note = note;
    this.session = rid(8);
    this.cursor = null;
    this.queue = Promise.resolve();
  }
  sendRaw(s) { if (this.ws.readyState === WebSocket.OPEN) this.ws.send(s); }
  send(o) { this.sendRaw(JSON.stringify(o)); }
  close(reason) {
    log('closing a page connection:', reason);
    this.send({ t: 'error', message: reason });
    this.ws.close(1008, reason.slice(0, 120));
  }
  hello() {
    const n = this.note;
    this.send({ t: 'hello', v: PROTOCOL, epoch: n.epoch, note: n.id, version: n.version, text: n.text.toString(),
      me: { session: this.session, key: ME.key, fp: ME.fp, name: ME.name, color: ME.color }, fields: n.fields,
      ...(this.client ? { taken: n.taken.get(this.client) || 0 } : {}) });
    this.sendRaw(JSON.stringify({ t: 'items', items: outline(n), unattached_confirmations: [] }));
    this.sendRaw(statusMsg());
    n.schedulePresence();
  }
  message(data, isBinary) {
    if (isBinary) return this.close('binary frames are not used');
    if (data.length > MAX_MSG) return this.close('message over 1 MiB');
    let m;
    try { m = JSON.parse(utf8Strict.decode(data)); } catch { return this.close('invalid JSON or UTF-8'); }
    if (!m || typeof m !== 'object' || Array.isArray(m) || typeof m.t !== 'string') return this.close('a message is an object with a string "t"');
    const n = this.note;
    const ver = (v) => Number.isInteger(v) && v >= 0;
    switch (m.t) {
      case 'push': {
        // docs/web.md, "push": code-point splices on the text at `version` plus this
        // page's own updates since. The daemon merges them with the CRDT; the mock maps
        // them over a diff from that text to its current one (an approximation).
        if (!ver(m.version)) return this.close('push: bad version');
        if (m.version > n.version) return this.close('push: version from the future');
        if (!Array.isArray(m.updates) || !m.updates.length || m.updates.length > 10000) return this.close('push: bad updates');
        const cid = m.updates[0] && m.updates[0].clientID;
        let view = n.textAtVersion(m.version);
        for (let i = m.version; i < n.version; i++) if (n.updates[i].clientID === cid && n.updates[i].pageCs) view = n.updates[i].pageCs.apply(view);
        let page = null, t = view;
        for (const u of m.updates) {
          if (!u || typeof u.clientID !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(u.clientID) || u.clientID !== cid) return this.close('push: bad clientID');
          if (!Array.isArray(u.splices)) return this.close('malformed update');
          for (const sp of u.splices) {
            if (!Array.isArray(sp) || sp.length !== 3 || !ver(sp[0]) || !ver(sp[1]) || typeof sp[2] !== 'string' || sp[2].includes('\u0000') || !wellFormed(sp[2])) return this.close('malformed update');
            const s16 = t.toString();
            const at = (cp, from = 0) => { let i = from; for (let k = 0; k < cp; k++) { if (i >= s16.length) return -1; i += isHigh(s16.charCodeAt(i)) ? 2 : 1; } return i; };
            const from = at(sp[0]), to = from < 0 ? -1 : at(sp[1], from);
            if (from < 0 || to < 0) return this.close('an edit lies outside the text of its version');
            const cs = ChangeSet.of([{ from, to, insert: sp[2] }], t.length);
            page = page ? page.compose(cs) : cs;
            t = cs.apply(t);
          }
        }
        if (!page) page = ChangeSet.empty(view.length);
        const over = view.eq(n.text) ? null : diffChangeSet(view.toString(), n.text.toString());
        const cs = over ? page.map(over) : page;
        n.taken.set(cid, (n.taken.get(cid) || 0) + m.updates.length);
        const list = [{ clientID: cid, cs, author: ME.fp, pageCs: page, acks: m.updates.length }];
        n.append(list);
        if (n.link) n.link.localAppended(list);
        return;
      }
      case 'pull':
        if (!ver(m.version) || m.version > n.version) return this.close('pull: version from the future');
        return this.send({ t: 'updates', version: m.version, updates: n.updates.slice(m.version).map(wireUpdate) });
      case 'cursor': {
        if (!ver(m.version) || m.version > n.version) return this.close('cursor: version from the future');
        if (!Array.isArray(m.ranges) || m.ranges.length > 100) return this.close('cursor: bad ranges');
        const ranges = [];
        for (const r of m.ranges) {
          if (!r || !ver(r.anchor) || !ver(r.head)) return this.close('cursor: bad range');
          ranges.push({ anchor: r.anchor, head: r.head });
        }
        this.cursor = { version: m.version, ranges };
        n.schedulePresence();
        return;
      }
      case 'authorship': return this.send(authorship(n));
      case 'history':
        return this.send({ t: 'history', changes: n.changes.map((c) => ({ index: c.index, id: c.id, fp: c.fp, name: c.name, time_ms: c.time_ms })) });
      case 'at':
        if (!Number.isInteger(m.index) || m.index < 0 || m.index >= n.changes.length) return this.close('at: no such change');
        return this.send({ t: 'at', index: m.index, text: n.textAt(m.index) });
      case 'confirm': {
        if (typeof m.id !== 'string' || !/^[0-9a-f]{16}$/.test(m.id) || typeof m.text !== 'string' || m.text.length > 65536 ||
            (m.owner != null && typeof m.owner !== 'string')) return this.close('malformed confirm');
        const it = outline(n).find((x) => x.id === m.id);
        if (!it || it.text !== m.text || (it.owner || null) !== (m.owner || null)) return this.send({ t: 'error', message: 'the item changed; look again' });
        if (!n.confirms.some((c) => c.id === m.id && c.fp === ME.fp && c.text === it.text)) n.confirms.push({ id: m.id, text: it.text, owner: it.owner, fp: ME.fp });
        n.lastItems = null;
        return n.sendItems();
      }
      case 'error': return;
      default: return this.close(`unknown message type "${String(m.t).slice(0, 40)}"`);
    }
  }
}

const wss = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });
function upgrade(req, socket, head) {
  const url = new URL(req.url, 'http://x');
  const deny = (code, why) => { socket.write(`HTTP/1.1 ${code} ${why}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`); socket.destroy(); };
  if (!hosts.has(req.headers.host || '')) return deny(421, 'Misdirected Request');
  if (!origins.has(req.headers.origin || '') && url.pathname !== '/peer') return deny(403, 'Forbidden');
  if (!cookieOk(req)) return deny(403, 'Forbidden');
  if (url.pathname === '/peer') return wss.handleUpgrade(req, socket, head, (ws) => linkServer.accept(ws));
  if (url.pathname !== '/ws') return deny(404, 'Not Found');
  const v = url.searchParams.get('v');
  if (v != null && v !== String(PROTOCOL)) return deny(400, 'Bad Request');
  const note = notes.get(url.searchParams.get('note') || '');
  if (!note) return deny(404, 'Not Found');
  wss.handleUpgrade(req, socket, head, (ws) => {
    const c = new PageConn(ws, note);
    const client = url.searchParams.get('client');
    if (client && /^[A-Za-z0-9_-]{16,64}$/.test(client)) c.client = client;
    note.conns.add(c);
    ws.on('message', (data, isBinary) => {
      const run = () => { if (ws.readyState === WebSocket.OPEN) { try { c.message(data, isBinary); } catch (e) { log('error', e); c.close('internal error'); } } };
      const wait = () => new Promise((r) => setTimeout(r, Math.max(LAG, stallUntil - Date.now())));
      if (LAG || stallUntil > Date.now() || c.queued) {
        c.queued = (c.queued || 0) + 1;
        c.queue = c.queue.then(wait).then(run).then(() => { c.queued--; });
      } else run();
    });
    ws.on('close', () => { note.conns.delete(c); note.schedulePresence(); });
    ws.on('error', () => {});
    c.hello();
  });
}

// ---------- link: this instance as the authority for a linked peer ----------
// Mock-only: a real daemon syncs signed CRDT changes with its peers (docs/protocol.md).
class LinkServer {
  constructor() { this.peers = new Set(); }
  count() { return this.peers.size; }
  accept(ws) {
    const peer = { ws, person: null, send: (o) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(o)); } };
    ws.on('message', (d) => { try { this.message(peer, JSON.parse(d.toString())); } catch (e) { log('link error', e); ws.close(1008, 'link error'); } });
    ws.on('close', () => {
      this.peers.delete(peer);
      for (const n of notes.values()) for (const [s, p] of n.remotePeople) if (p.via === peer) { n.remotePeople.delete(s); n.schedulePresence(); }
      sendStatusAll();
    });
    ws.on('error', () => {});
  }
  message(peer, m) {
    if (m.t === 'peer-hello') {
      peer.person = m.person;
      persons.set(m.person.fp, m.person);
      for (const x of m.notes) if (!notes.has(x.id)) createNote(x.fields, x.text, m.person, x.id);
      this.peers.add(peer);
      peer.send({ t: 'peer-hello', person: ME, persons: [...persons.values()],
        notes: [...notes.values()].map((n) => ({ id: n.id, fields: n.fields, text: n.text.toString(), epoch: n.epoch, version: n.version })) });
      for (const n of notes.values()) this.sendPeople(n);
      sendStatusAll();
      return;
    }
    if (m.t === 'peer-new') { if (!notes.has(m.note.id)) createNote(m.note.fields, m.note.text, peer.person, m.note.id); return; }
    const n = notes.get(m.note);
    if (!n) return;
    if (m.t === 'push') {
      if (m.epoch !== n.epoch || m.version !== n.version) return; // the peer rebases and pushes again
      const list = m.updates.map((u) => ({ clientID: u.clientID, cs: ChangeSet.fromJSON(u.changes), author: u.author }));
      n.append(list);
      return;
    }
    if (m.t === 'pull') {
      if (m.epoch !== n.epoch) return this.restartFor(peer, n);
      peer.send({ t: 'updates', note: n.id, epoch: n.epoch, version: m.version, updates: n.updates.slice(m.version).map(wireUpdate) });
      return;
    }
    if (m.t === 'people') {
      for (const [s, p] of n.remotePeople) if (p.via === peer) n.remotePeople.delete(s);
      for (const p of m.people) n.remotePeople.set(p.session, { ...p, via: peer });
      n.schedulePresence();
    }
  }
  broadcast(n, from) {
    const ups = n.updates.slice(from);
    const msg = { t: 'updates', note: n.id, epoch: n.epoch, version: from, updates: ups.map(wireUpdate),
      persons: [...new Set(ups.map((u) => u.author))].map(person) };
    for (const p of this.peers) p.send(msg);
  }
  announce(n) { for (const p of this.peers) p.send({ t: 'peer-new', by: ME.fp, note: { id: n.id, fields: n.fields, text: n.text.toString() } }); }
  sendPeople(n) {
    for (const peer of this.peers) {
      const people = n.people().filter((p) => n.remotePeople.get(p.session)?.via !== peer)
        .map((p) => ({ session: p.session, fp: p.fp, name: p.name, key: p.key, color: p.color, ranges: p.ranges, version: p.version }));
      const msg = JSON.stringify({ t: 'people', note: n.id, epoch: n.epoch, people });
      peer.last ??= new Map();
      if (peer.last.get(n.id) === msg) continue;
      peer.last.set(n.id, msg);
      peer.ws.send(msg);
    }
  }
  restart(n) { for (const p of this.peers) this.restartFor(p, n); }
  restartFor(peer, n) { peer.send({ t: 'reset', note: n.id, epoch: n.epoch, version: n.version, text: n.text.toString(), by: ME.fp }); }
}

// ---------- link: this instance as a peer of an authority ----------
class NoteLink {
  // this instance's view of one note of the authority: a collab client in the middle
  constructor(note, epoch, version, confirmed) {
    this.note = note;
    this.epoch = epoch; // the authority's epoch
    this.version = version; // authority version confirmed here
    this.confirmed = textOf(confirmed); // the authority's text at `version`
    this.pending = []; // local updates not yet taken by the authority: {cs, author}
    this.inflight = false;
    this.log = []; // authority-space descs, from logStart
    this.logStart = version;
    this.people = []; // the authority's people (authority space)
  }
  localAppended(list) {
    for (const u of list) this.pending.push({ cs: u.cs, author: u.author });
    this.push();
  }
  push() {
    if (this.inflight || !this.pending.length || !linkClient.up || this.epoch == null) return;
    this.inflight = true;
    linkClient.send({ t: 'push', note: this.note.id, epoch: this.epoch, version: this.version,
      updates: this.pending.map((u) => ({ clientID: `peer:${ME.fp}`, changes: u.cs.toJSON(), author: u.author })) });
    clearTimeout(this.retry);
    this.retry = setTimeout(() => { if (this.inflight) { this.inflight = false; linkClient.send({ t: 'pull', note: this.note.id, epoch: this.epoch, version: this.version }); } }, 2000);
  }
  received(m) {
    for (const p of m.persons || []) if (p.fp !== ME.fp && p.name != null) persons.set(p.fp, p);
    if (m.epoch !== this.epoch) return;
    if (m.version > this.version) { linkClient.send({ t: 'pull', note: this.note.id, epoch: this.epoch, version: this.version }); return; }
    const ups = m.updates.slice(this.version - m.version);
    const local = [];
    for (const u of ups) {
      const cs = ChangeSet.fromJSON(u.changes);
      this.version++;
      this.confirmed = cs.apply(this.confirmed);
      this.log.push(cs.desc);
      if (u.clientID === `peer:${ME.fp}` && this.pending.length) { this.pending.shift(); continue; }
      // rebase the foreign update over what is pending here, as collab's receiveUpdates does
      let c = cs;
      this.pending = this.pending.map((p) => { const moved = p.cs.map(c); c = c.map(p.cs, true); return { cs: moved, author: p.author }; });
      local.push({ clientID: `peer:${u.author}`.slice(0, 64), cs: c, author: u.author });
    }
    if (this.log.length > 4000) { this.log.splice(0, 2000); this.logStart += 2000; }
    if (local.length) this.note.append(local);
    this.inflight = false;
    this.push();
    this.remapPeople();
    lastSync = Date.now();
  }
  reset(m) {
    // the authority restarted (or this is the first contact): move what is pending
    // onto its text with a prefix/suffix diff, then bring the local text there
    const n = this.note;
    let o = diffCS(this.confirmed.toString(), m.text);
    this.pending = this.pending.map((p) => { const moved = p.cs.map(o); o = o.map(p.cs, true); return { cs: moved, author: p.author }; });
    const want = this.pending.reduce((t, p) => p.cs.apply(t), textOf(m.text)).toString();
    const local = diffCS(n.text.toString(), want);
    this.epoch = m.epoch;
    this.version = m.version;
    this.confirmed = textOf(m.text);
    this.log = [];
    this.logStart = m.version;
    this.inflight = false;
    if (!local.empty) n.append([{ clientID: 'peer:reset', cs: local, author: m.by || ME.fp }]);
    this.push();
  }
  // authority people → local pages (mapped into the local version space)
  remapPeople() {
    const n = this.note;
    for (const [s, p] of n.remotePeople) if (p.via === 'link') n.remotePeople.delete(s);
    const pend = this.pending.reduce((a, p) => (a ? a.composeDesc(p.cs.desc) : p.cs.desc), null);
    for (const p of this.people) {
      if (p.version > this.version || p.version < this.logStart) continue;
      const map = (x) => {
        for (let i = p.version; i < this.version; i++) x = this.log[i - this.logStart].mapPos(Math.min(x, this.log[i - this.logStart].length), 1);
        return pend ? pend.mapPos(Math.min(x, pend.length), 1) : x;
      };
      n.remotePeople.set(p.session, { session: p.session, fp: p.fp, via: 'link', version: n.version,
        ranges: (p.ranges || []).map((r) => ({ anchor: map(r.anchor), head: map(r.head) })) });
    }
    n.schedulePresence();
  }
  // local pages' people → authority space
  sendPeople() {
    if (!linkClient.up) return;
    const n = this.note;
    const inv = this.pending.reduce((a, p) => (a ? a.composeDesc(p.cs.desc) : p.cs.desc), null)?.invertedDesc;
    const people = [];
    for (const c of n.conns) {
      if (!c.cursor) continue;
      const map = (x) => {
        for (let i = c.cursor.version; i < n.version; i++) x = n.updates[i].cs.desc.mapPos(Math.min(x, n.updates[i].cs.length), 1);
        return inv ? inv.mapPos(Math.min(x, inv.length), -1) : x;
      };
      people.push({ session: c.session, fp: ME.fp, version: this.version, ranges: c.cursor.ranges.map((r) => ({ anchor: map(r.anchor), head: map(r.head) })) });
    }
    const msg = JSON.stringify(people);
    if (msg === this.lastPeople) return;
    this.lastPeople = msg;
    linkClient.send({ t: 'people', note: n.id, people });
  }
}

function diffCS(a, b) {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p < n && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--;
  let s = 0;
  while (s < n - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--;
  return ChangeSet.of(p === a.length && p === b.length ? [] : [{ from: p, to: a.length - s, insert: b.slice(p, b.length - s) }], a.length);
}

class LinkClient {
  constructor(target) {
    this.target = new URL(target);
    this.token = this.target.searchParams.get('token');
    this.up = false;
    this.enabled = true;
    this.ws = null;
  }
  send(o) { if (this.ws && this.up) this.ws.send(JSON.stringify(o)); }
  setEnabled(on) {
    this.enabled = on;
    if (!on && this.ws) this.ws.terminate();
    if (on && !this.ws) this.connect();
  }
  announce(n) {
    n.link = new NoteLink(n, null, 0, n.text.toString());
    this.send({ t: 'peer-new', note: { id: n.id, fields: n.fields, text: n.text.toString() } });
    if (this.up) this.send({ t: 'pull', note: n.id, epoch: null, version: 0 });
  }
  async connect() {
    if (!this.enabled) return;
    try {
      const res = await fetch(`${this.target.origin}/?token=${encodeURIComponent(this.token)}`, { redirect: 'manual' });
      const cookie = (res.headers.get('set-cookie') || '').split(';')[0];
      const ws = new WebSocket(`ws://${this.target.host}/peer`, { headers: { Cookie: cookie, Origin: this.target.origin } });
      this.ws = ws;
      ws.on('open', () => {
        this.up = true;
        ws.send(JSON.stringify({ t: 'peer-hello', person: ME,
          notes: [...notes.values()].map((n) => ({ id: n.id, fields: n.fields, text: n.text.toString() })) }));
      });
      ws.on('message', (d) => { try { this.message(JSON.parse(d.toString())); } catch (e) { log('link error', e); } });
      ws.on('close', () => { this.ws = null; this.up = false; for (const n of notes.values()) if (n.link) n.link.lastPeople = null; this.dropPeople(); sendStatusAll(); if (this.enabled) setTimeout(() => this.connect(), 500); });
      ws.on('error', () => {});
    } catch {
      this.ws = null;
      setTimeout(() => this.connect(), 500);
    }
  }
  dropPeople() {
    for (const n of notes.values()) {
      for (const [s, p] of n.remotePeople) if (p.via === 'link') n.remotePeople.delete(s);
      if (n.link) n.link.people = [];
      n.schedulePresence();
    }
  }
  message(m) {
    if (m.t === 'peer-hello') {
      for (const p of m.persons) if (p.fp !== ME.fp) persons.set(p.fp, p);
      for (const x of m.notes) {
        let n = notes.get(x.id);
        if (!n) { n = createNote(x.fields, x.text, m.person, x.id); n.link = new NoteLink(n, x.epoch, x.version, x.text); continue; }
        if (!n.link) { n.link = new NoteLink(n, x.epoch, x.version, n.text.toString()); n.link.reset({ epoch: x.epoch, version: x.version, text: x.text, by: m.person.fp }); continue; }
        if (n.link.epoch === x.epoch && x.version >= n.link.version) { this.send({ t: 'pull', note: n.id, epoch: x.epoch, version: n.link.version }); continue; }
        n.link.reset({ epoch: x.epoch, version: x.version, text: x.text, by: m.person.fp });
      }
      sendStatusAll();
      for (const n of notes.values()) if (n.link) n.link.sendPeople();
      return;
    }
    if (m.t === 'peer-new') {
      if (!notes.has(m.note.id)) { const n = createNote(m.note.fields, m.note.text, persons.get(m.by) || ME, m.note.id); n.link = new NoteLink(n, null, 0, m.note.text); this.send({ t: 'pull', note: n.id, epoch: null, version: 0 }); }
      return;
    }
    const n = notes.get(m.note);
    if (!n || !n.link) return;
    if (m.t === 'updates') return n.link.received(m);
    if (m.t === 'reset') return n.link.reset(m);
    if (m.t === 'people') {
      for (const p of m.people) if (p.fp !== ME.fp && p.name != null) persons.set(p.fp, { name: p.name, key: p.key, fp: p.fp, color: p.color });
      n.link.people = m.people;
      n.link.remapPeople();
    }
  }
}

// ---------- bot: a simulated remote person ----------
const WORDS = ['agenda', 'release', 'review', 'kraftkit', 'docs', 'hackathon', 'décision', '日本語', 'ok 👍', 'RD', 'Friday', 'tests'];
function startBot(note, name, ms, text) {
  const who = identity(name);
  persons.set(who.fp, who);
  const session = rid(8);
  let pos = null;
  let i = 0;
  const script = text != null ? Array.from(text) : null;
  const tick = () => {
    if (!notes.has(note.id)) return;
    if (script && i >= script.length) return;
    const len = note.text.length;
    if (pos == null || pos > len) {
      const lines = note.text.lines;
      const ln = note.text.line(1 + Math.floor(Math.random() * lines));
      pos = ln.to;
    }
    const word = script ? script[i++] : `${i++ % 7 === 6 ? '\n' : ' '}${WORDS[Math.floor(Math.random() * WORDS.length)]}`;
    const cs = ChangeSet.of([{ from: pos, insert: word }], len);
    note.append([{ clientID: `peer:${who.fp}`, cs, author: who.fp }]);
    if (note.link) note.link.localAppended([{ cs, author: who.fp }]);
    pos += word.length;
    note.remotePeople.set(session, { session, fp: who.fp, via: 'bot', version: note.version, ranges: [{ anchor: pos, head: pos }] });
    note.schedulePresence();
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

// ---------- start ----------
const server = http.createServer((req, res) => { handle(req, res).catch((e) => { log('error', e); try { jerr(res, 500, 'internal error'); } catch { /* closed */ } }); });
server.on('upgrade', upgrade);
server.listen(PORT, '127.0.0.1', () => {
  const port = server.address().port;
  cookieName = `notes_${port}`;
  hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  origins = new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
  linkServer = new LinkServer();
  if (LINK) { linkClient = new LinkClient(LINK); linkClient.connect(); }
  if (BOT_MS > 0) {
    setInterval(() => { for (const n of notes.values()) if (n.conns.size && !n.botStarted) { n.botStarted = true; startBot(n, 'Bot', BOT_MS); } }, 500);
  }
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/`, port, token: TOKEN, name: ME.name, fp: ME.fp, key: ME.key })}\n`);
});
const stop = () => { for (const n of notes.values()) n.commit(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// --exit-with-stdin: stop when the parent's end of stdin closes (the parent died)
if (argv.includes('--exit-with-stdin')) { process.stdin.on('end', stop); process.stdin.on('error', stop); process.stdin.resume(); }
