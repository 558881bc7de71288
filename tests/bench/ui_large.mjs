// ui_large.mjs: the page on a large note (issue 9): how long it takes to open,
// and local keystroke to screen.   usage: node ui_large.mjs URL [N]
// Environment: NOTES_BIN, NOTES_HOME, NOTE_ID (to read the daemon's text with
// `notes show --json`), CHROMIUM (default /usr/bin/chromium), LOADS (page
// loads, default 5), GAP_MS (between keys, default 60), RAW (a file for
// the per-key times).
//
// (a) page_open: "page open" is from navigation start (performance.timeOrigin,
// the token URL's redirect included) to the frame painted after the first
// animation frame at which the editor is there whole and editable: its state
// holds the whole text (window.notesPage.text() as long as the daemon's text;
// CodeMirror draws only the lines on screen, so the DOM cannot tell), its
// lines are in the DOM and its content element is contenteditable. page_open:
// LOADS loads, each in a new browser context (nothing cached: a first visit);
// page_open_warm: LOADS loads in one profile after two (the browser has the
// bundle, revalidated with its ETag, and V8's code cache of it: every open but
// the first). Parts: HTML response, app.js loaded, WebSocket open, hello
// received, the preview's first piece; and the longest task in the 3 s after
// "painted" (what typing right away would wait for).
// (b) keystroke: N characters typed at the end of the note and N in the
// middle (at a line start), words of letters with GAP_MS between keys and a
// 0.3-1.2 s pause every 40 keys (the preview renders in pauses). Each: from
// the keydown (a capture listener on document) to the first mutation under
// [data-notes-editor] that adds the character (MutationObserver), and to the
// animation frame after it (the paint follows). Also the acknowledgement by
// the daemon (its `updates` echo of the page's own update, after the commit)
// and long tasks (over 50 ms) meanwhile. Then the daemon's text must hold
// everything typed. One JSON line per figure.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import puppeteer from 'puppeteer-core';

const url = process.argv[2];
const N = Number(process.argv[3] || 300);
const LOADS = Number(process.env.LOADS || 5);
const GAP = Number(process.env.GAP_MS || 60);
if (!url || !(N > 0)) { console.error('usage: node ui_large.mjs URL [N]'); process.exit(2); }

const daemonText = () => JSON.parse(execFileSync(process.env.NOTES_BIN,
  ['show', process.env.NOTE_ID, '--json'], { env: process.env, maxBuffer: 64 << 20 }).toString()).text;
const expected = daemonText();
const r2 = (x) => (x == null ? null : +x.toFixed(2));
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return { n: 0 };
  const p = (q) => r2(s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  return { n: s.length, p50: p(0.5), p90: p(0.9), p99: p(0.99), max: r2(s[s.length - 1]),
    mean: r2(s.reduce((a, b) => a + b, 0) / s.length) };
};
const load = () => os.loadavg().map((x) => +x.toFixed(2));
const withTimeout = (p, ms, what) => Promise.race([p, new Promise((_, rej) =>
  setTimeout(() => rej(new Error(`timeout: ${what}`)), ms))]);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
});
// Kill Chromium if anything below hangs or throws.
const bail = (e) => { console.error(`ui_large: ${e && e.stack ? e.stack : e}`); browser.process()?.kill('SIGKILL'); process.exit(1); };
process.on('unhandledRejection', bail);
const watchdog = setTimeout(() => bail(new Error('overall timeout (15 min)')), 15 * 60 * 1000);

// Runs in the page before its own script: the WebSocket's times, own updates
// acknowledged, long tasks, and the frame at which the whole text is there.
function instrument(expectedLen) {
  const now = () => performance.now();
  const m = { acks: [], pushed: 0, longtasks: [] };
  window.__m = m;
  const Orig = window.WebSocket;
  window.WebSocket = class extends Orig {
    constructor(...a) {
      super(...a);
      m.wsCreated ??= now();
      this.addEventListener('open', () => { m.wsOpen ??= now(); });
      this.addEventListener('message', (e) => {
        const t = now();
        if (m.hello == null) { m.hello = t; m.helloBytes = typeof e.data === 'string' ? e.data.length : 0; return; }
        if (typeof e.data !== 'string' || !m.cid || !e.data.includes('"updates"')) return;
        try {
          const msg = JSON.parse(e.data);
          if (msg.t === 'updates') for (const u of msg.updates || []) if (u.clientID === m.cid) m.acks.push(t);
        } catch { /* not ours to judge */ }
      });
    }
    send(data) {
      try {
        if (typeof data === 'string' && data.includes('"push"')) {
          const msg = JSON.parse(data);
          if (msg.t === 'push') { m.pushed += (msg.updates || []).length; m.cid = msg.updates?.[0]?.clientID ?? m.cid; }
        }
      } catch { /* ignore */ }
      return super.send(data);
    }
  };
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) m.longtasks.push([e.startTime, e.duration]); })
      .observe({ type: 'longtask', buffered: true });
  } catch { /* no long tasks API */ }
  const check = () => {
    const p = window.notesPage;
    const ed = document.querySelector('[data-notes-editor]');
    if (p && p.ready() && ed && ed.isContentEditable && ed.querySelector('.cm-line') && p.text().length === expectedLen) {
      m.opened = now();
      requestAnimationFrame(() => { m.painted = now(); });
      const pv = () => { if (document.querySelector('.preview .pv-piece')) m.preview = now(); else requestAnimationFrame(pv); };
      requestAnimationFrame(pv);
      return;
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
}

const newPage = async (shared) => {
  const ctx = shared ? browser.defaultBrowserContext() : await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  page.on('pageerror', (e) => console.error(`ui_large: page error: ${e.message}`));
  await page.evaluateOnNewDocument(instrument, expected.length);
  return { ctx, page };
};

// ---- (a) page open ----
const sleep0 = (ms) => new Promise((r) => setTimeout(r, ms));
const openOnce = async (shared) => {
  const { ctx, page } = await newPage(shared);
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 30000 });
  await page.waitForFunction(() => window.__m && window.__m.painted != null, { timeout: 30000, polling: 50 });
  await sleep0(3000); // the preview renders meanwhile; its tasks are counted below
  const r = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const js = performance.getEntriesByType('resource').find((e) => e.name.includes('/assets/app.js'));
    const m = window.__m;
    return { html: nav && nav.responseEnd, redirect: nav && nav.redirectEnd, dcl: nav && nav.domContentLoadedEventEnd,
      appjs: js && js.responseEnd, appjs_bytes: js && js.transferSize, ws_open: m.wsOpen, hello: m.hello, hello_bytes: m.helloBytes,
      editor: m.opened, painted: m.painted, preview: m.preview,
      longest_task: Math.max(0, ...m.longtasks.filter((x) => x[0] < m.painted).map((x) => x[1])),
      longest_task_after: Math.max(0, ...m.longtasks.filter((x) => x[0] >= m.painted && x[0] < m.painted + 3000).map((x) => x[1])) };
  });
  for (const k of Object.keys(r)) if (typeof r[k] === 'number' && !k.endsWith('_bytes')) r[k] = r2(r[k]);
  if (shared) await page.close(); else await ctx.close();
  return r;
};
for (const shared of [false, true]) {
  if (shared) for (let i = 0; i < 2; i++) await openOnce(true); // the profile gets the bundle and its code cache
  const loads = [];
  for (let i = 0; i < LOADS; i++) loads.push(await openOnce(shared));
  const opened = loads.map((l) => l.painted);
  console.log(JSON.stringify({ figure: shared ? 'page_open_warm' : 'page_open', text_len: expected.length, loads: opened.length,
    median_ms: stats(opened).p50, max_ms: stats(opened).max, first_ms: opened[0],
    max_task_after_ms: stats(loads.map((l) => l.longest_task_after)).max, each: loads, loadavg: load() }));
}

// ---- (b) keystroke to screen ----
const { page } = await newPage();
await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 30000 });
await page.waitForFunction(() => window.__m && window.__m.painted != null, { timeout: 30000, polling: 50 });
await page.evaluate(() => {
  const ed = document.querySelector('[data-notes-editor]');
  const now = () => performance.now();
  const keys = []; // {ch, t0, ev, dom, frame}
  window.__keys = keys;
  let cur = null, done = null;
  document.addEventListener('keydown', (e) => {
    if (e.key.length !== 1) return;
    cur = { ch: e.key, t0: now(), ev: e.timeStamp, dom: null, frame: null };
    keys.push(cur);
  }, true);
  const adds = (recs, ch) => recs.some((r) => (r.type === 'characterData' ? (r.target.data || '').includes(ch)
    : [...r.addedNodes].some((n) => (n.textContent || '').includes(ch))));
  new MutationObserver((recs) => {
    if (!cur || cur.dom != null || !adds(recs, cur.ch)) return;
    const k = cur;
    k.dom = now();
    requestAnimationFrame(() => { k.frame = now(); if (done) { done(); done = null; } });
  }).observe(ed, { subtree: true, childList: true, characterData: true });
  // Resolves when the last key is on screen (or after ms).
  window.__settled = (ms) => new Promise((resolve) => {
    const k = keys[keys.length - 1];
    if (!k || k.frame != null) return resolve(true);
    done = () => resolve(true);
    setTimeout(() => resolve(false), ms);
  });
});
let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// The string typed at one place: a marker, then words of letters.
const typed = (tag) => {
  let s = `ZQ${tag}Q `;
  for (let i = 0; s.length < N; i++) s += (i % 7 === 6 ? ' ' : 'abcdefghijklmnopqrstuvwxyz'[Math.floor(rnd() * 26)]);
  return s.slice(0, N);
};
const places = [];
const typeAt = async (tag) => {
  const s = typed(tag);
  const k0 = await page.evaluate(() => window.__keys.length);
  for (let i = 0; i < s.length; i++) {
    await page.keyboard.press(s[i] === ' ' ? 'Space' : s[i]);
    const seen = await page.evaluate((ms) => window.__settled(ms), 2000);
    if (!seen && i < 3) bail(new Error(`the keys typed at ${tag} do not reach the editor`));
    await sleep(i % 40 === 39 ? 300 + rnd() * 900 : GAP);
  }
  places.push({ tag, s, k0 });
};

// Put the caret at `pos` by clicking on it (scrolled into view first).
const caretAt = async (pos) => {
  await page.evaluate((p) => window.notesPage.reveal(p), pos);
  await sleep(300);
  const c = await page.evaluate((p) => window.notesPage.coordsAt(p), pos);
  if (!c) bail(new Error(`no coordinates for position ${pos}`));
  await page.mouse.click(c.left + 1, (c.top + c.bottom) / 2);
  await sleep(300);
  return page.evaluate(() => window.notesPage.selection()[0]);
};
// End of the note (Ctrl+End after the click, in case it landed beside).
let caretEnd = await caretAt(expected.length);
await page.keyboard.down('Control'); await page.keyboard.press('End'); await page.keyboard.up('Control');
await sleep(300);
caretEnd = await page.evaluate(() => window.notesPage.selection()[0]);
await typeAt('END');
// Middle: the start of the line nearest the middle.
const mid = expected.lastIndexOf('\n', expected.length >> 1) + 1;
const sel = await caretAt(mid);
await typeAt('MID');

// Everything acknowledged, then what the page and the daemon have.
const deadline = Date.now() + 30000;
while (Date.now() < deadline && await page.evaluate(() => window.notesPage.pending()) > 0) await sleep(100);
await sleep(300);
const res = await page.evaluate(() => ({ keys: window.__keys, acks: window.__m.acks, pushed: window.__m.pushed,
  longtasks: window.__m.longtasks, text: window.notesPage.text(), pending: window.notesPage.pending() }));
const after = daemonText();
await browser.close();
clearTimeout(watchdog);

if (process.env.RAW) {
  // Every key (page clock, ms): typed at, to DOM, to frame, acknowledged; and the long tasks.
  const { writeFileSync } = await import('node:fs');
  writeFileSync(process.env.RAW, JSON.stringify({ keys: res.keys.map((k, i) => [r2(k.t0), r2(k.dom - k.t0),
    r2(k.frame - k.t0), r2((res.acks[i] ?? NaN) - k.t0)]), longtasks: res.longtasks }));
}
const oneUpdatePerKey = res.pushed === res.keys.length && res.acks.length === res.keys.length;
for (const pl of places) {
  const ks = res.keys.slice(pl.k0, pl.k0 + pl.s.length);
  const t1 = ks[0]?.t0 ?? 0, t2 = ks.length ? ks[ks.length - 1].t0 + 5000 : 0;
  const lt = res.longtasks.filter(([st]) => st >= t1 && st <= t2).map((x) => x[1]);
  const missing = ks.filter((k) => k.dom == null).length;
  const ack = oneUpdatePerKey ? ks.map((k, i) => res.acks[pl.k0 + i] - k.t0) : [];
  const ackStats = stats(ack);
  const spikes = oneUpdatePerKey ? ack.map((ms, i) => [pl.k0 + i + 1, r2(ms)])
    .filter(([, ms]) => ms > Math.max(3 * ackStats.p50, ackStats.p50 + 10)) : null;
  console.log(JSON.stringify({ figure: 'keystroke', place: pl.tag, at: pl.tag === 'MID' ? mid : expected.length, caret: pl.tag === 'MID' ? sel : caretEnd,
    keys: ks.length, not_seen: missing,
    key_to_dom: stats(ks.filter((k) => k.dom != null).map((k) => k.dom - k.t0)),
    key_to_frame: stats(ks.filter((k) => k.frame != null).map((k) => k.frame - k.t0)),
    event_to_dom: stats(ks.filter((k) => k.dom != null).map((k) => k.dom - k.ev)),
    ack: oneUpdatePerKey ? ackStats : 'keys and updates do not pair one to one',
    ack_spikes: spikes, longtasks: { n: lt.length, max: r2(Math.max(0, ...lt)), total: r2(lt.reduce((a, b) => a + b, 0)) },
    gap_ms: GAP, loadavg: load() }));
}
const allThere = places.every((pl) => after.includes(pl.s));
console.log(JSON.stringify({ figure: 'committed', keys: res.keys.length, pushed: res.pushed, acked: res.acks.length,
  pending: res.pending, page_equals_daemon: res.text === after, daemon_has_all_typed: allThere,
  daemon_len: after.length, expected_len: expected.length + places.reduce((a, pl) => a + pl.s.length, 0) }));
process.exit(allThere && res.text === after ? 0 : 1);
