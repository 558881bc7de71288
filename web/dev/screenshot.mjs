#!/usr/bin/env node
// docs/screenshot-note.png: the note page with two authors' text coloured
// (authorship on), the other person's cursor, presence and the decisions panel.
// Two mock daemons (Ana, and Ben linked to her) on the community sample.
//   node web/dev/screenshot.mjs [OUT.png]
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] || path.join(here, '..', '..', 'docs', 'screenshot-note.png'));
const samples = path.resolve(here, '..', '..', '..', 'shared', 'samples');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function mock(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'mock-daemon.mjs'), '--quiet', '--exit-with-stdin', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    readline.createInterface({ input: child.stdout }).once('line', (l) => resolve({ ...JSON.parse(l), child }));
    child.once('exit', (c) => reject(new Error(`mock exited ${c}`)));
  });
}

const a = await mock(['--name', 'Ana Ionescu', '--samples', samples]);
const b = await mock(['--name', 'Ben Okafor', '--samples', samples, '--link', `${a.url}?token=${a.token}`]);
const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--lang=en-US', '--force-device-scale-factor=1'] });
try {
  const notes = await (await fetch(`${a.url}dev/state?token=${a.token}`)).json();
  const id = notes.notes.find((n) => /Community/.test(n.title || '')).id;
  await sleep(800);
  const open = async (m) => {
    const page = await (await browser.createBrowserContext()).newPage();
    await page.setViewport({ width: 1440, height: 900 });
    await page.goto(`${m.url}n/${id}?token=${m.token}`, { waitUntil: 'load' });
    await page.waitForFunction(() => window.notesPage && window.notesPage.ready() && window.notesPage.connected());
    return page;
  };
  const pa = await open(a);
  const pb = await open(b);
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
  await pa.evaluate(() => window.notesPage.reveal(0));
  await pa.click('[data-action="authorship"]');
  await pb.click('[data-action="authorship"]');
  await at(pb, 'suggestions, lessons');
  await sleep(1200);
  await pa.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  a.child.kill();
  b.child.kill();
}
