// Helpers shared by the browser tests: the browser, pages with watchers (console,
// CSP violations, dialogs, requests to other origins), the editor, the daemons'
// text, and a small assertion/reporting layer.
import puppeteer from 'puppeteer-core';
import { execFile } from 'node:child_process';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function launch() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows', '--no-first-run',
      '--disable-features=Translate,MediaRouter,OptimizationHints', '--lang=en-US'],
  });
}

// A page in its own browser context (its own cookies and sessionStorage, like a
// different person), with watchers installed before any script of the page runs.
export async function openPage(browser, url, { name = 'page', context = null, viewport = { width: 1280, height: 860 } } = {}) {
  const ctx = context || await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport(viewport);
  const w = { name, console: [], csp: [], dialogs: [], foreign: [], errors: [], requests: [] };
  page.watch = w;
  const origin = new URL(url).origin;
  page.on('console', (m) => {
    const text = m.text();
    w.console.push(`${m.type()}: ${text}`);
    if (/Content.Security.Policy|CSP/i.test(text)) w.csp.push(text);
  });
  page.on('pageerror', (e) => w.errors.push(String(e && e.message || e)));
  page.on('dialog', async (d) => { w.dialogs.push(`${d.type()}: ${d.message()}`); await d.dismiss().catch(() => {}); });
  page.on('request', (r) => {
    const u = r.url();
    w.requests.push(u);
    if (!sameOrigin(u, origin)) w.foreign.push(u);
  });
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`);
    });
  });
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  page.origin = origin;
  return page;
}

function sameOrigin(u, origin) {
  if (u.startsWith('data:') || u.startsWith('about:') || u.startsWith('blob:')) return true;
  try {
    const x = new URL(u);
    const o = new URL(origin);
    return (x.protocol === o.protocol || (x.protocol === 'ws:' && o.protocol === 'http:') || (x.protocol === 'wss:' && o.protocol === 'https:')) && x.host === o.host;
  } catch { return false; }
}

export async function cspViolations(page) {
  const inPage = await page.evaluate(() => window.__csp || []).catch(() => []);
  return [...page.watch.csp, ...inPage];
}

export async function waitEditor(page, timeout = 15000) {
  await page.waitForSelector('[data-notes-editor]', { timeout });
  await page.waitForFunction(() => window.notesPage && window.notesPage.ready() && window.notesPage.connected(), { timeout });
}

export const editorText = (page) => page.evaluate(() => window.notesPage.text());
export const pendingCount = (page) => page.evaluate(() => window.notesPage.pending());

// Focus the editor and put the cursor at the end of line `line` (1-based), or at
// the end of the text. Done with real key events after a click.
export async function clickEditor(page) {
  // a visible point of the text: the middle of the scroller, right of the gutter
  const box = await page.$eval('[data-notes-editor]', (e) => {
    const s = e.closest('.cm-scroller').getBoundingClientRect();
    const c = e.getBoundingClientRect();
    return { x: Math.max(c.left, s.left) + 30, y: s.top + Math.min(s.height, c.bottom - s.top) / 2 };
  });
  await page.mouse.click(box.x, box.y);
}
export async function gotoEnd(page) {
  await clickEditor(page);
  await page.keyboard.down('Control'); await page.keyboard.press('End'); await page.keyboard.up('Control');
}
// Put the cursor right after the first occurrence of `marker` (found in the page's
// text): a mouse click at that place, then arrow keys if the click landed a
// character off.
export async function gotoAfter(page, marker) {
  const pos = await page.evaluate((m) => {
    const i = window.notesPage.text().indexOf(m);
    return i < 0 ? -1 : i + m.length;
  }, marker);
  if (pos < 0) throw new Error(`marker ${marker} not in the text`);
  await page.evaluate((p) => window.notesPage.reveal(p), pos);
  await sleep(100);
  const c = await page.evaluate((p) => window.notesPage.coordsAt(p), pos);
  if (!c) throw new Error(`position ${pos} is not on screen`);
  await page.mouse.click(c.left + 1, (c.top + c.bottom) / 2);
  for (let tries = 0; tries < 40; tries++) {
    const head = await page.evaluate(() => window.notesPage.selection()[0].head);
    if (head === pos) return;
    await page.keyboard.press(head < pos ? 'ArrowRight' : 'ArrowLeft');
  }
  throw new Error(`cannot put the cursor at ${pos}`);
}

// Wait until f() is truthy (polling), or throw with `what`.
export async function until(f, what, timeout = 15000, every = 100) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeout) {
    last = await f();
    if (last) return last;
    await sleep(every);
  }
  throw new Error(`timed out after ${timeout} ms: ${what}`);
}

// The final text of one side as its daemon has it. `spec` is an http(s) URL
// (fetched; "{note}" is replaced by the note id) or a shell command run with
// NOTE=<id> in its environment ("{note}" replaced too) that prints the note's text
// (the body, as `notes show NOTE --json | jq -r .text` gives it). One trailing
// newline more than the editor has is tolerated.
export async function daemonText(spec, noteId) {
  if (!spec) return null;
  const s = spec.replaceAll('{note}', noteId);
  if (/^https?:\/\//.test(s)) {
    const r = await fetch(s, { cache: 'no-store' });
    if (!r.ok) throw new Error(`${s}: ${r.status}`);
    return r.text();
  }
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', s], { env: { ...process.env, NOTE: noteId }, maxBuffer: 64 << 20 }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}
export const sameText = (daemon, editor) => daemon === editor || daemon === `${editor}\n`;

// Where two texts part (for a failed comparison): lengths, the first differing
// UTF-16 position and a little of each side around it, escaped.
export function textDiff(a, b) {
  if (a == null || b == null) return { a: a && a.length, b: b && b.length };
  let i = 0;
  const n = Math.min(a.length, b.length);
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  let j = 0;
  while (j < n - i && a.charCodeAt(a.length - 1 - j) === b.charCodeAt(b.length - 1 - j)) j++;
  const cut = (s) => JSON.stringify(s.slice(Math.max(0, i - 20), Math.min(s.length, s.length - j + 20)).slice(0, 200));
  return { lengths: [a.length, b.length], firstDiff: i, commonSuffix: j, a: cut(a), b: cut(b) };
}

export function noteIdOf(url) {
  const m = /\/n\/([0-9a-f]{32})/.exec(url);
  return m ? m[1] : null;
}

const T0 = Date.now();
const stamp = () => (process.env.TIMES ? `[${((Date.now() - T0) / 1000).toFixed(1)}] ` : '');
export function check(results, cond, what, detail) {
  results.push({ ok: !!cond, what, detail: cond ? undefined : detail });
  if (!cond) console.log(`    ${stamp()}✗ ${what}${detail !== undefined ? `: ${typeof detail === 'string' ? detail : JSON.stringify(detail).slice(0, 600)}` : ''}`);
  else console.log(`    ${stamp()}✓ ${what}`);
  return !!cond;
}

// Character counts (by code point) of a string.
export function counts(s) {
  const m = new Map();
  for (const ch of s) m.set(ch, (m.get(ch) || 0) + 1);
  return m;
}
export function diffCounts(want, got) {
  const out = [];
  for (const k of new Set([...want.keys(), ...got.keys()])) {
    const a = want.get(k) || 0, b = got.get(k) || 0;
    if (a !== b) out.push(`${JSON.stringify(k)}: want ${a}, got ${b}`);
  }
  return out;
}

export async function checkWatchers(results, page, label) {
  const v = await cspViolations(page);
  check(results, v.length === 0, `${label}: no CSP violation`, v);
  check(results, page.watch.dialogs.length === 0, `${label}: no dialog opened`, page.watch.dialogs);
  check(results, page.watch.foreign.length === 0, `${label}: no request to another origin`, page.watch.foreign);
  check(results, page.watch.errors.length === 0, `${label}: no uncaught script error`, page.watch.errors);
}
