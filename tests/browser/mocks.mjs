// Two mock daemons (web/dev/mock-daemon.mjs), B linked to A like two laptops, and a
// fresh note on both: what the tests run against until the real daemon exists.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
export const MOCK = path.resolve(here, '..', '..', 'web', 'dev', 'mock-daemon.mjs');

function start(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MOCK, '--quiet', '--exit-with-stdin', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error('mock daemon did not start')), 10000);
    rl.once('line', (line) => { clearTimeout(timer); const info = JSON.parse(line); info.child = child; resolve(info); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`mock daemon exited (${code})`)); });
  });
}

export async function cookieFor(info) {
  const r = await fetch(`${info.url}?token=${encodeURIComponent(info.token)}`, { redirect: 'manual' });
  return (r.headers.get('set-cookie') || '').split(';')[0];
}

export async function dev(info, what, params = {}, method = 'POST') {
  const q = new URLSearchParams({ ...params, token: info.token });
  const r = await fetch(`${info.url}dev/${what}?${q}`, { method });
  if (!r.ok) throw new Error(`dev/${what}: ${r.status}`);
  return what === 'text' ? r.text() : r.json();
}

export async function startMocks({ lag = 5 } = {}) {
  const a = await start(['--name', 'Ana', '--lag', String(lag)]);
  const b = await start(['--name', 'Ben', '--lag', String(lag), '--link', `${a.url}?token=${a.token}`]);
  const stop = () => { for (const m of [a, b]) { try { m.child.kill('SIGTERM'); } catch { /* gone */ } } };
  return { a, b, stop };
}

// A new note on A (through its API, as the page does), present on B once linked.
export async function newSharedNote(m, title) {
  const cookie = await cookieFor(m.a);
  const r = await fetch(`${m.a.url}api/notes`, { method: 'POST', headers: { Cookie: cookie, Origin: m.a.url.replace(/\/$/, ''), 'Content-Type': 'application/json' },
    body: JSON.stringify({ template: 'meeting', title }) });
  const { id } = await r.json();
  for (let i = 0; i < 100; i++) {
    const st = await dev(m.b, 'state', {}, 'GET');
    if (st.link && st.notes.some((n) => n.id === id)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    id,
    urlA: `${m.a.url}n/${id}?token=${m.a.token}`,
    urlB: `${m.b.url}n/${id}?token=${m.b.token}`,
    textA: `${m.a.url}dev/text?note={note}&token=${m.a.token}`,
    textB: `${m.b.url}dev/text?note={note}&token=${m.b.token}`,
  };
}
