// Runs the browser tests, against two real daemons or two mock daemons.
//
//   node run.mjs [TEST...]            tests: protocol reconcile concurrent samespot conflicts presence reload hostile csp
//
// Against real daemons (both pages on the same note, one page per daemon):
//   NOTES_URL_A=http://127.0.0.1:P/n/ID?token=T   (what `notes open` prints)
//   NOTES_URL_B=http://127.0.0.1:Q/n/ID?token=U
//   NOTES_TEXT_A, NOTES_TEXT_B (optional): how to read each side's final text, an
//     http(s) URL or a shell command with NOTE=<id> set ("{note}" is replaced), e.g.
//     'NOTES_HOME=/tmp/a notes show "$NOTE" --json | jq -r .text'
// Without NOTES_URL_A, two mock daemons are started (web/dev/mock-daemon.mjs).
// DURATION: seconds of concurrent typing in (a), default 30.
// The last line is "N passed, N failed" (one per check).
import { launch, CHROMIUM } from './lib.mjs';
import { startMocks, newSharedNote, dev } from './mocks.mjs';
import fs from 'node:fs';

const ALL = ['protocol', 'reconcile', 'concurrent', 'samespot', 'conflicts', 'presence', 'reload', 'hostile', 'csp'];
const want = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const w of want) if (!ALL.includes(w)) { console.error(`unknown test ${w}; tests: ${ALL.join(' ')}`); process.exit(2); }
const tests = want.length ? want : ALL;

if (!fs.existsSync(CHROMIUM)) {
  console.log(`SKIP: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  process.exit(77);
}

const duration = Number(process.env.DURATION || 30);
let mocks = null;
let ctxNote;
if (process.env.NOTES_URL_A) {
  const id = (/\/n\/([0-9a-f]{32})/.exec(process.env.NOTES_URL_A) || [])[1];
  if (!id || !process.env.NOTES_URL_B) { console.error('NOTES_URL_A and NOTES_URL_B must be note URLs (/n/<id>?token=…)'); process.exit(2); }
  ctxNote = { id, urlA: process.env.NOTES_URL_A, urlB: process.env.NOTES_URL_B, textA: process.env.NOTES_TEXT_A || null, textB: process.env.NOTES_TEXT_B || null };
  console.log(`against the daemons of ${new URL(ctxNote.urlA).host} and ${new URL(ctxNote.urlB).host}, note ${id}`);
} else {
  mocks = await startMocks();
  ctxNote = await newSharedNote(mocks, 'Browser tests');
  console.log(`against two mock daemons (${mocks.a.url}, ${mocks.b.url} linked to it), note ${ctxNote.id}`);
}

let browser;
const results = [];
const t0 = Date.now();
try {
  browser = await launch();
  const ctx = { browser, note: ctxNote, duration, mocks, dev };
  for (const name of tests) {
    console.log(`\n== ${name}`);
    const t = Date.now();
    try {
      const mod = await import(`./${name}.mjs`);
      const r = await mod.default(ctx);
      for (const x of r) results.push({ test: name, ...x });
    } catch (e) {
      console.log(`    ✗ ${name} stopped: ${e.stack || e}`);
      results.push({ test: name, ok: false, what: `${name} ran to the end`, detail: String(e) });
    }
    console.log(`   (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  if (mocks) mocks.stop();
}

const failed = results.filter((r) => !r.ok);
console.log(`\nbrowser tests: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
for (const f of failed) console.log(`FAILED ${f.test}: ${f.what}`);
console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
