// (a) Two pages type into the same paragraph at the same time, with real key
// events at about 20 keys/s each.
// Phase 1, DURATION seconds: A types at the end of the paragraph, B in its middle:
// tokens with é, 日本語 and emoji, Enter, Backspace (a junk character typed and
// removed) and a selection replaced by typing. Phase 2, 5 s: both cursors start at
// the very same place and type tokens and spaces (no Enter: CodeMirror's Enter
// deletes the spaces after the cursor, which may be the other page's there).
// After each phase both editors (and both daemons, when their text can be read)
// hold the same text, every character typed and kept appears exactly once (nothing
// lost, nothing doubled), and each page's characters keep their order.
import {
  openPage, waitEditor, editorText, pendingCount, gotoEnd, gotoAfter, until, daemonText, sameText,
  check, counts, diffCounts, checkWatchers, sleep,
} from './lib.mjs';

const PAYLOADS = ['', 'é', '日本語', '😀', 'ñø', 'x', 'Ünï', '🎉👍'];
const KEY_MS = 50; // ~20 keys/s

// One page's typing until `until_ms`: returns {kept, tokens, keys}. With `edits`,
// some tokens replace a selection of junk, and junk is typed then backspaced.
async function typist(page, who, until_ms, { edits, junk, phase, enter = true }) {
  const kept = [];
  const tokens = [];
  let keys = 0;
  const t0 = Date.now();
  const pace = async () => { keys++; const d = t0 + keys * KEY_MS - Date.now(); if (d > 0) await sleep(d); };
  const press = async (k) => { await page.keyboard.press(k); await pace(); };
  const type = async (s) => { for (const ch of s) { await page.keyboard.type(ch); await pace(); } };
  const shift = who === 'A' ? 0 : 3; // the two scripts differ
  for (let n = 0; Date.now() < until_ms; n++) {
    const token = `{${who}${phase}.${n}${PAYLOADS[(n + shift) % PAYLOADS.length]}}`;
    if (edits && (n + shift) % 7 === 5) {
      // a selection replaced: type junk, select it with Shift+ArrowLeft, type over it
      await type(junk.repeat(3));
      await page.keyboard.down('Shift');
      for (let i = 0; i < 3; i++) await press('ArrowLeft');
      await page.keyboard.up('Shift');
    }
    await type(token);
    tokens.push(token);
    kept.push(token);
    if (edits && (n + shift) % 7 === 3) { await type(junk); await press('Backspace'); } // typed and removed
    if (enter && (n + shift) % 11 === 10) { await press('Enter'); kept.push('\n'); } else { await type(' '); kept.push(' '); }
  }
  return { kept: kept.join(''), tokens, keys };
}

function subsequence(small, big) {
  const a = Array.from(small), b = Array.from(big);
  let i = 0;
  for (let j = 0; j < b.length && i < a.length; j++) if (b[j] === a[i]) i++;
  return i === a.length;
}

async function converge(a, b) {
  let ea = '', eb = '';
  try {
    await until(async () => {
      ea = await editorText(a); eb = await editorText(b);
      return ea === eb && (await pendingCount(a)) === 0 && (await pendingCount(b)) === 0;
    }, 'both editors converge', 30000, 200);
  } catch { /* reported by the caller */ }
  return [ea, eb];
}

async function verify(r, label, a, b, note, before, ta, tb, marker) {
  const [ea, eb] = await converge(a, b);
  check(r, ea === eb, `${label}: both editors hold the same text`, { a: ea.length, b: eb.length });
  const diffs = diffCounts(counts(before + ta.kept + tb.kept), counts(ea));
  check(r, diffs.length === 0, `${label}: every typed character appears exactly once`, diffs.slice(0, 12));
  const region = ea.slice(ea.indexOf(marker) + marker.length);
  check(r, subsequence(ta.kept, region), `${label}: A's characters keep their order`);
  check(r, subsequence(tb.kept, region), `${label}: B's characters keep their order`);
  const split = [...ta.tokens, ...tb.tokens].filter((t) => ea.split(t).length !== 2);
  console.log(`    ${label}: ${ta.tokens.length + tb.tokens.length - split.length} of ${ta.tokens.length + tb.tokens.length} tokens whole${split.length ? ` (split: ${split.slice(0, 8).join(' ')})` : ''}`);
  check(r, ea.startsWith(before.slice(0, before.indexOf(marker))), `${label}: the text before the paragraph is untouched`);
  if (note.textA) {
    const da = await until(async () => { const t = await daemonText(note.textA, note.id); return sameText(t, ea) ? t : null; }, 'A daemon', 10000).catch(() => null);
    check(r, da !== null, `${label}: A's daemon holds the editors' text`);
  }
  if (note.textB) {
    const db = await until(async () => { const t = await daemonText(note.textB, note.id); return sameText(t, ea) ? t : null; }, 'B daemon', 10000).catch(() => null);
    check(r, db !== null, `${label}: B's daemon holds the editors' text`);
  }
  return { ea, split };
}

export default async function concurrent(ctx) {
  const { browser, note, duration } = ctx;
  const r = [];
  const a = await openPage(browser, note.urlA, { name: 'A' });
  const b = await openPage(browser, note.urlB, { name: 'B' });
  await waitEditor(a);
  await waitEditor(b);

  // phase 1: one paragraph, A at its end, B in its middle
  const marker = `Concurrent ${Date.now().toString(36)}:`;
  await gotoEnd(a);
  await a.keyboard.press('Enter');
  await a.keyboard.press('Enter');
  await a.keyboard.type(`${marker} middle|end`);
  await until(async () => (await editorText(b)).includes(`${marker} middle|end`), 'B sees the paragraph');
  await until(async () => (await pendingCount(a)) === 0, 'A confirmed');
  let before = await editorText(a);
  await gotoAfter(a, `${marker} middle|end`); // the end of the paragraph
  await gotoAfter(b, `${marker} middle`); // before "|end" (Enter there eats no space)
  let t0 = Date.now();
  let end = t0 + duration * 1000;
  let [ta, tb] = await Promise.all([typist(a, 'A', end, { edits: true, junk: '~', phase: 1 }), typist(b, 'B', end, { edits: true, junk: '^', phase: 1 })]);
  let secs = (Date.now() - t0) / 1000;
  console.log(`    phase 1: typed ${ta.keys} keys on A and ${tb.keys} on B in ${secs.toFixed(1)} s (${(ta.keys / secs).toFixed(1)} and ${(tb.keys / secs).toFixed(1)} keys/s)`);
  const one = await verify(r, 'phase 1', a, b, note, before, ta, tb, marker);
  check(r, one.split.length === 0, 'phase 1: every token whole', one.split);
  const para = one.ea.slice(one.ea.indexOf(marker));
  check(r, !/[~^]/.test(para), 'phase 1: junk removed (Backspace) and replaced (selection) is gone', para.match(/.{0,20}[~^].{0,20}/g));

  // phase 2: both cursors at the very same place
  const marker2 = `Same place ${Date.now().toString(36)}:`;
  await gotoEnd(a);
  await a.keyboard.press('Enter');
  await a.keyboard.press('Enter');
  await a.keyboard.type(`${marker2} `);
  await until(async () => (await editorText(b)).includes(marker2), 'B sees the second paragraph');
  await until(async () => (await pendingCount(a)) === 0, 'A confirmed');
  before = await editorText(a);
  await gotoAfter(a, marker2);
  await gotoAfter(b, marker2);
  t0 = Date.now();
  end = t0 + 5000;
  [ta, tb] = await Promise.all([typist(a, 'A', end, { edits: false, enter: false, phase: 2 }), typist(b, 'B', end, { edits: false, enter: false, phase: 2 })]);
  secs = (Date.now() - t0) / 1000;
  console.log(`    phase 2: typed ${ta.keys} keys on A and ${tb.keys} on B in ${secs.toFixed(1)} s`);
  // Each page types on the version it has and the CRDT merges (issue 18): where the
  // cursors met, each page's tokens stay whole.
  const two = await verify(r, 'phase 2', a, b, note, before, ta, tb, marker2);
  check(r, two.split.length === 0, 'phase 2: every token whole', two.split);

  const fb = await Promise.all([a, b].map((p) => p.evaluate(() => window.notesPage.fallbacks())));
  console.log(`    reconciliations that fell back to a diff: A ${fb[0]}, B ${fb[1]}`);
  if (!ctx.mocks) check(r, fb[0] === 0 && fb[1] === 0, 'no page had to fall back to a diff to take the other\'s text in', fb);
  await checkWatchers(r, a, 'A');
  await checkWatchers(r, b, 'B');
  await a.browserContext().close();
  await b.browserContext().close();
  return r;
}
