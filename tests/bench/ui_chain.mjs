// Keystroke-to-remote-screen latency across more than two pages: the measure of the
// anchors' latency.mjs (../shared/anchors/live), with pages open beside the two
// measured ones.   usage: node ui_chain.mjs URL_A URL_B [N] [--load] [--also URL]...
// Page A types N short unique tokens; for each, the time from A's last keydown to
// the moment B's editor shows the whole token (MutationObserver on the element
// carrying [data-notes-editor]). The --also pages are opened first and stay open,
// connected, receiving everything (ui_latency.sh chain: the other 8 pages of 5
// daemons). All pages run in one browser, so performance.timeOrigin +
// performance.now() is one clock. --load: B types ~20 keys/s meanwhile.
// A token B has not shown within TIMEOUT_MS (default 5000) is "never drawn"
// (`lost`); afterwards the harness checks that B's editor holds every token
// (`missing_at_end`: typed on A and not in B's text 10 s after the last key).
// One JSON line, the fields of latency.mjs plus pages, missing_at_end.
import puppeteer from 'puppeteer-core';

const argv = process.argv.slice(2);
const also = [];
const rest = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--also') also.push(argv[++i]);
  else if (!argv[i].startsWith('--')) rest.push(argv[i]);
}
const [urlA, urlB] = rest;
const N = Number(rest[2] || 500);
const load = argv.includes('--load');
const TIMEOUT = Number(process.env.TIMEOUT_MS || 5000);
if (!urlA || !urlB || !(N > 0)) {
  console.error('usage: node ui_chain.mjs URL_A URL_B [N] [--load] [--also URL]...');
  process.exit(2);
}
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
});
const bail = (e) => { console.error(`ui_chain: ${e && e.stack ? e.stack : e}`); browser.process()?.kill('SIGKILL'); process.exit(1); };
process.on('unhandledRejection', bail);
const watchdog = setTimeout(() => bail(new Error('overall timeout (20 min)')), 20 * 60 * 1000);

const open = async (url, measured) => {
  const page = await (await browser.createBrowserContext()).newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.on('pageerror', (e) => console.error(`ui_chain: page error: ${e.message}`));
  await page.goto(url, { waitUntil: 'networkidle2', timeout: 20000 });
  await page.waitForSelector('[data-notes-editor]', { timeout: 10000 });
  if (!measured) return page;
  await page.evaluate(() => {
    const ed = document.querySelector('[data-notes-editor]');
    const text = () => (ed.value !== undefined ? ed.value : ed.textContent);
    const now = () => performance.timeOrigin + performance.now();
    document.addEventListener('keydown', () => { window.__lastKey = now(); }, true);
    window.__waitFor = (token, ms) => new Promise((resolve) => {
      if (text().includes(token)) return resolve(now());
      const obs = new MutationObserver(() => { if (text().includes(token)) { obs.disconnect(); resolve(now()); } });
      obs.observe(ed, { subtree: true, childList: true, characterData: true });
      ed.addEventListener('input', () => { if (text().includes(token)) { obs.disconnect(); resolve(now()); } });
      setTimeout(() => { obs.disconnect(); resolve(-1); }, ms);
    });
  });
  await page.click('[data-notes-editor]');
  await page.keyboard.down('Control'); await page.keyboard.press('End'); await page.keyboard.up('Control');
  return page;
};
const others = [];
for (const u of also) others.push(await open(u, false));
const a = await open(urlA, true), b = await open(urlB, true);
await a.keyboard.press('Enter'); await b.keyboard.press('Enter');
let typing = true;
const background = load ? (async () => {
  for (let i = 0; typing; i++) await b.keyboard.type(i % 12 === 11 ? '\n' : 'w', { delay: 0 }).then(() => new Promise((r) => setTimeout(r, 50)));
})() : null;
const lat = []; let lost = 0;
const tokens = [];
for (let i = 0; i < N; i++) {
  const token = `zq${i}x`;
  tokens.push(token);
  const seen = b.evaluate((t, ms) => window.__waitFor(t, ms), token, TIMEOUT);
  await a.keyboard.type(token);
  const tA = await a.evaluate(() => window.__lastKey);
  const tB = await seen;
  await a.keyboard.type(i % 10 === 9 ? '\n' : ' ');
  if (tB < 0) lost++; else lat.push(Math.max(0, tB - tA));
}
typing = false; if (background) await background;
// Every token in B's editor state (not only drawn): a bounded wait for the last ones.
const textB = () => b.evaluate(() => (window.notesPage && window.notesPage.text ? window.notesPage.text()
  : document.querySelector('[data-notes-editor]').textContent));
let missing = tokens;
for (let t = Date.now(); Date.now() - t < 10000;) {
  const s = await textB();
  missing = tokens.filter((tok) => !s.includes(tok)); // zq1x is in no other token
  if (!missing.length) break;
  await new Promise((r) => setTimeout(r, 200));
}
clearTimeout(watchdog);
await browser.close();
lat.sort((x, y) => x - y);
const pct = (p) => (lat.length ? +lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2) : null);
console.log(JSON.stringify({ mode: load ? 'concurrent' : 'quiet', n: N, seen: lat.length, lost,
  p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: lat.length ? +lat[lat.length - 1].toFixed(2) : null,
  mean: lat.length ? +(lat.reduce((s, x) => s + x, 0) / lat.length).toFixed(2) : null,
  pages: 2 + others.length, missing_at_end: missing.length }));
