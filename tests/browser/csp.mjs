// (e) The page's console shows no CSP violation while every feature is used: the
// index, a new meeting, an import, typing, the three view modes, authorship,
// history. Also the HTTP side of the security model (docs/web.md): CSP with a fresh
// nonce per page and no 'unsafe-inline', nosniff, no-referrer, no-store for the
// API, the token cookie, 403 without it, JSON-only POSTs, Origin and Host checks.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openPage, waitEditor, until, check, checkWatchers, cspViolations, sleep } from './lib.mjs';

function raw(url, { method = 'GET', headers = {}, body = null } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode, headers: res.headers, body: '' }); });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

function upgrade(url, headers) {
  return raw(url, { headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers } });
}

export async function cookieFrom(url) {
  const r = await raw(url);
  const sc = [].concat(r.headers['set-cookie'] || [])[0] || '';
  return { res: r, cookie: sc.split(';')[0], setCookie: sc };
}

async function headerChecks(r, url) {
  const u = new URL(url);
  const origin = u.origin;
  const id = (/\/n\/([0-9a-f]{32})/.exec(u.pathname) || [])[1];
  const { res, cookie, setCookie } = await cookieFrom(url);
  check(r, res.status >= 300 && res.status < 400 && res.headers.location && !res.headers.location.includes('token='),
    'the token URL redirects to the address without the token', { status: res.status, location: res.headers.location });
  check(r, /HttpOnly/i.test(setCookie) && /SameSite=Strict/i.test(setCookie) && /Path=\//i.test(setCookie), 'it sets an HttpOnly, SameSite=Strict cookie', setCookie);
  const H = { Cookie: cookie };
  const nonces = [];
  for (const p of ['/', `/n/${id}`, `/n/${id}`, '/assets/app.js', '/assets/app.css', '/api/notes']) {
    const x = await raw(origin + p, { headers: H });
    const csp = x.headers['content-security-policy'] || '';
    check(r, x.status === 200, `GET ${p}: 200`, x.status);
    check(r, /default-src 'none'/.test(csp) && /script-src 'self'(;|$)/.test(csp) && !/unsafe-(inline|eval)|\*/.test(csp) && /connect-src 'self'/.test(csp),
      `GET ${p}: a strict CSP`, csp);
    check(r, x.headers['x-content-type-options'] === 'nosniff' && x.headers['referrer-policy'] === 'no-referrer', `GET ${p}: nosniff, no-referrer`, x.headers);
    if (p.startsWith('/api/')) check(r, /no-store/.test(x.headers['cache-control'] || ''), `GET ${p}: Cache-Control: no-store`, x.headers['cache-control']);
    if (p === '/' || p.startsWith('/n/')) {
      const meta = (/<meta name="csp-nonce" content="([^"]+)">/.exec(x.body) || [])[1];
      const hdr = (/style-src 'self' 'nonce-([^']+)'/.exec(csp) || [])[1];
      check(r, meta && hdr && meta === hdr && meta.length >= 16, `GET ${p}: the nonce of the meta tag is the CSP's`, { meta, hdr });
      check(r, !/<script>|<script [^>]*>[^<]/.test(x.body.replace(/<script src="\/assets\/app.js" defer><\/script>/, '')), `GET ${p}: no inline script`);
      nonces.push(meta);
    }
  }
  check(r, new Set(nonces).size === nonces.length, 'a fresh nonce for every page', nonces);
  for (const p of ['/', `/n/${id}`, '/assets/app.js', '/api/notes']) {
    const x = await raw(origin + p);
    check(r, x.status === 403, `GET ${p} without the cookie: 403`, x.status);
  }
  const bad = await raw(`${origin}/?token=not-the-token`);
  check(r, bad.status === 403, 'a wrong token: 403', bad.status);
  const host = await raw(`${origin}/api/notes`, { headers: { ...H, Host: `evil.example:${u.port}` } });
  check(r, host.status >= 400 && host.status < 500, 'a foreign Host header (DNS rebinding): refused', host.status);
  const json = JSON.stringify({ template: 'meeting', title: 'csrf' });
  const text = await raw(`${origin}/api/notes`, { method: 'POST', headers: { ...H, Origin: origin, 'Content-Type': 'text/plain' }, body: json });
  check(r, text.status >= 400 && text.status < 500 && JSON.parse(text.body || '{}').error, 'POST as text/plain: refused with {"error"}', text);
  const form = await raw(`${origin}/api/notes`, { method: 'POST', headers: { ...H, Origin: origin, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'title=x' });
  check(r, form.status >= 400 && form.status < 500, 'POST as a form: refused', form.status);
  const xo = await raw(`${origin}/api/notes`, { method: 'POST', headers: { ...H, Origin: 'http://evil.example', 'Content-Type': 'application/json' }, body: json });
  check(r, xo.status === 403, 'POST from another origin: 403', xo.status);
  const wsUrl = `${origin}/ws?note=${id}&v=1`;
  const w1 = await upgrade(wsUrl, { ...H, Origin: origin });
  check(r, w1.status === 101, 'WebSocket with the cookie and the origin: 101', w1.status);
  const w2 = await upgrade(wsUrl, { ...H, Origin: 'http://evil.example' });
  check(r, w2.status !== 101, 'WebSocket from another origin: refused', w2.status);
  const w3 = await upgrade(wsUrl, { Origin: origin });
  check(r, w3.status !== 101, 'WebSocket without the cookie: refused', w3.status);
  const w4 = await upgrade(`${origin}/ws?note=${id}&v=2`, { ...H, Origin: origin });
  check(r, w4.status !== 101, 'WebSocket asking for protocol v2: refused', w4.status);
}

export default async function csp(ctx) {
  const { browser, note } = ctx;
  const r = [];
  await headerChecks(r, note.urlA);

  // the index: list, new meeting
  const index = new URL('/', note.urlA);
  index.search = new URL(note.urlA).search;
  const p = await openPage(browser, index.href, { name: 'index' });
  await p.waitForSelector('ul.notes li a.note-link', { timeout: 15000 });
  check(r, (await p.$$('ul.notes li')).length >= 1, 'the index lists the notes');
  check(r, await p.evaluate(() => !document.querySelector('#app .boot')), 'app.js replaced page.html\'s loading line (index)');
  // Opening a note builds no Intl.Segmenter (its ICU data cost 12 ms of a page
  // open; web/build.mjs makes @codemirror/commands create it at its first use).
  await p.evaluateOnNewDocument(() => {
    if (typeof Intl === 'undefined' || !Intl.Segmenter) return;
    window.__segmenters = 0;
    Intl.Segmenter = new Proxy(Intl.Segmenter, { construct(t, a, nt) { window.__segmenters++; return Reflect.construct(t, a, nt); } });
  });
  const title = `CSP walk ${Date.now().toString(36)}`;
  await p.type('form.new-note input', title);
  await Promise.all([p.waitForNavigation({ timeout: 15000 }), p.click('[data-action="new"]')]);
  check(r, /\/n\/[0-9a-f]{32}$/.test(new URL(p.url()).pathname), '"New meeting" opens the new note', p.url());
  await waitEditor(p);
  await until(async () => (await p.evaluate(() => document.querySelector('.topbar .title').textContent)) === title, 'the title shows');
  check(r, true, 'the new note has its title');
  check(r, await p.evaluate(() => !document.querySelector('#app .boot')), 'app.js replaced page.html\'s loading line (note)');
  check(r, await p.evaluate(() => !window.__segmenters), 'opening a note made no Intl.Segmenter', await p.evaluate(() => window.__segmenters));
  // type, modes, authorship, history
  await p.click('[data-notes-editor]');
  await p.keyboard.down('Control'); await p.keyboard.press('End'); await p.keyboard.up('Control');
  await p.keyboard.type('\n- [ ] RD: write the **report**\n\nSome *text* with a [link](https://example.invalid/) and `code`.\n');
  await until(async () => (await p.evaluate(() => window.notesPage.pending())) === 0, 'typed text taken');
  for (const mode of ['edit', 'view', 'both']) {
    await p.click(`[data-mode="${mode}"]`);
    await sleep(300);
  }
  await p.waitForFunction(() => document.querySelector('.preview strong')?.textContent === 'report', { timeout: 10000 });
  check(r, true, 'the preview renders Markdown');
  await p.click('[data-action="authorship"]');
  await p.waitForFunction(() => document.querySelector('.show-authorship .nc-au'), { timeout: 10000 }).catch(() => {});
  check(r, await p.evaluate(() => !!document.querySelector('.show-authorship .nc-au')), 'authorship colours the text');
  await sleep(1200); // let the daemon commit, so history has the typing
  await p.click('[data-action="history"]');
  await p.waitForSelector('.history-bar input[type="range"]', { timeout: 10000 });
  await p.waitForSelector('[data-notes-history]', { timeout: 10000 });
  const max = await p.$eval('.history-bar input[type="range"]', (e) => +e.max);
  await p.$eval('.history-bar input[type="range"]', (e) => { e.value = '0'; e.dispatchEvent(new Event('input')); });
  await p.waitForFunction(() => !document.querySelector('[data-notes-history]').textContent.includes('report'), { timeout: 10000 }).catch(() => {});
  const first = await p.$eval('[data-notes-history]', (e) => e.textContent);
  check(r, max >= 1 && !first.includes('report'), `history: change 1 of ${max + 1} is the note before the typing`, first.slice(0, 80));
  check(r, await p.$eval('[data-notes-history]', (e) => e.getAttribute('contenteditable') !== 'true'), 'history is read-only');
  await p.click('.history-bar button.primary');
  check(r, await p.$eval('[data-notes-editor]', (e) => e.offsetParent !== null), '"Back to live" shows the editor again');
  await checkWatchers(r, p, 'new note');

  // the index again: import a .md file
  await Promise.all([p.waitForNavigation({ timeout: 15000 }), p.click('a.back')]);
  await p.waitForSelector('input[type="file"]');
  const file = path.join(os.tmpdir(), `notes-csp-${process.pid}.md`);
  fs.writeFileSync(file, '---\ntitle: Imported for the CSP walk\n---\n## Decisions\n\n- Everyone: imported files work\n');
  const input = await p.$('input[type="file"]');
  await Promise.all([p.waitForNavigation({ timeout: 15000 }), input.uploadFile(file)]);
  fs.unlinkSync(file);
  await waitEditor(p);
  await p.waitForFunction(() => document.querySelector('.items .text')?.textContent === 'imported files work', { timeout: 10000 }).catch(() => {});
  check(r, await p.evaluate(() => document.querySelector('.items .text')?.textContent === 'imported files work'), 'an imported file opens, with its decision in the side panel');
  const v = await cspViolations(p);
  check(r, v.length === 0, 'no CSP violation in the whole walk', v);
  await checkWatchers(r, p, 'walk');
  await p.browserContext().close();
  return r;
}
