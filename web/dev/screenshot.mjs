#!/usr/bin/env node
// docs/screenshot-note.png: the note page with two people's text coloured
// (authorship on), the other person's cursor, presence and the decisions panel
// with a confirmed decision. Two real `notes serve` daemons (Ana and Ben, each with
// a replica of their own in a temporary directory, one space, syncing on
// 127.0.0.1, each having named the other's key with `notes trust`) on the
// community sample, as tests/browser/daemons.sh starts them.
//   node web/dev/screenshot.mjs [NOTES_BIN (default build/cli/notes)] [OUT.png]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const notes = path.resolve(process.argv[2] || path.join(here, '..', '..', 'build', 'cli', 'notes'));
if (!fs.existsSync(notes)) { console.error(`usage: node web/dev/screenshot.mjs [NOTES_BIN (default ${notes})] [OUT.png]`); process.exit(2); }
const out = path.resolve(process.argv[3] || path.join(here, '..', '..', 'docs', 'screenshot-note.png'));
const sample = path.resolve(here, '..', '..', '..', 'shared', 'samples', 'community-2023-05-15.md');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'notes-shot.'));
const A = path.join(work, 'a'), B = path.join(work, 'b');
const env = (home) => ({ ...process.env, NOTES_HOME: home, NOTES_PASSPHRASE: '' });
const run = (home, ...args) => execFileSync(notes, args, { env: env(home), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const freeport = () => new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
async function until(f, what, ms = 15000) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
    try { const v = f(); if (v) return v; } catch { /* not yet */ }
  }
  throw new Error(`timed out: ${what}`);
}

const daemons = [];
const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--lang=en-US', '--force-device-scale-factor=1'] });
try {
  run(A, 'init', '--name', 'Ana Ionescu');
  run(B, 'init', '--name', 'Ben Okafor');
  run(A, 'space', 'create', 'call');
  const [PA, UA, PB, UB] = [await freeport(), await freeport(), await freeport(), await freeport()];
  const code = /notes1[a-z0-9]*/.exec(run(A, 'invite', 'call', '--address', `127.0.0.1:${PA}`))[0];
  try { run(B, 'join', code); } catch { /* A is not serving yet */ }
  const id = run(A, 'import', sample);
  run(A, 'space', 'add', 'call', id);
  // Each has checked the other's key (read aloud on the call) and named it.
  const person = (home) => JSON.parse(run(home, 'whoami', '--json')).person.key;
  run(A, 'trust', person(B), 'Ben Okafor');
  run(B, 'trust', person(A), 'Ana Ionescu');
  const serve = (home, args) => {
    const child = spawn(notes, ['serve', '--no-discovery', ...args], { env: env(home), stdio: ['ignore', 'ignore', 'inherit'] });
    daemons.push(child);
  };
  serve(A, ['--listen', `127.0.0.1:${PA}`, '--ui', `127.0.0.1:${UA}`]);
  await until(() => run(A, 'open', '--no-browser'), 'daemon A serves the page');
  serve(B, ['--listen', `127.0.0.1:${PB}`, '--peer', `127.0.0.1:${PA}`, '--ui', `127.0.0.1:${UB}`]);
  await until(() => run(B, 'open', '--no-browser'), 'daemon B serves the page');
  await until(() => run(B, 'list').split('\n').some((l) => l.startsWith(id.slice(0, 8))), 'B has the note');
  const urlA = run(A, 'open', id, '--no-browser'), urlB = run(B, 'open', id, '--no-browser');

  const open = async (url) => {
    const page = await (await browser.createBrowserContext()).newPage();
    await page.setViewport({ width: 1440, height: 900 });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => window.notesPage && window.notesPage.ready() && window.notesPage.connected());
    return page;
  };
  const pa = await open(urlA);
  const pb = await open(urlB);
  const at = async (page, marker) => {
    const pos = await page.evaluate((mk) => window.notesPage.text().indexOf(mk) + mk.length, marker);
    await page.evaluate((p) => window.notesPage.reveal(p), pos);
    await sleep(150);
    const c = await page.evaluate((p) => window.notesPage.coordsAt(p), pos);
    await page.mouse.click(c.left + 1, (c.top + c.bottom) / 2);
    await page.keyboard.press('End');
  };
  await at(pb, '- Current tracks in the community');
  await pb.keyboard.type('\nBen: hackathon in Bucharest, dates to confirm', { delay: 5 });
  await at(pa, '- Steps towards release 1.0 (late January 2024)');
  await pa.keyboard.type('\nRelease notes: who writes them?', { delay: 5 });
  await at(pb, '- Post-release items: feedback, suggestions, lessons learned');
  await pb.keyboard.type(' (Ben: collect them in a form)', { delay: 5 });
  await sleep(1500);
  // Both confirm the first decision, Ben the second: "✓ confirmed by Ana Ionescu, Ben Okafor".
  const confirm = async (page, n) => {
    const sel = `.side li.item:nth-child(${n}) button[data-action="confirm"]`;
    await page.waitForSelector(sel, { timeout: 15000 });
    await page.click(sel);
    await page.waitForFunction((s) => !document.querySelector(s), { timeout: 15000 }, sel);
  };
  await confirm(pb, 1);
  await confirm(pa, 1);
  await confirm(pb, 2);
  await pa.waitForFunction(() => /Ben Okafor/.test(document.querySelector('.side li.item:nth-child(2) [data-conf="confirmed"]')?.textContent || ''),
    { timeout: 15000 });
  await pa.evaluate(() => window.notesPage.reveal(0));
  await pa.click('[data-action="authorship"]');
  await pb.click('[data-action="authorship"]');
  await at(pb, 'suggestions, lessons');
  await sleep(1200);
  await pa.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  for (const d of daemons) d.kill('SIGTERM');
  await sleep(500);
  fs.rmSync(work, { recursive: true, force: true });
}
