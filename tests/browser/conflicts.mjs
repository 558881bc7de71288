// A line rewritten on both sides at once is not silent (issue 18): page A rewrites a
// line while daemon B is offline and B's replica rewrites the same line (`notes edit`);
// once B is back, the merged line is marked on both pages (both authors, each one's
// version), and one click on page A keeps B's version everywhere, ending the conflict.
// Needs NOTES_OFFLINE_B (daemons.sh); skipped against the mocks.
import { execFileSync } from 'node:child_process';
import { openPage, waitEditor, editorText, pendingCount, gotoEnd, gotoAfter, until, daemonText, sameText, check, checkWatchers, sleep } from './lib.mjs';

const offline = (...args) => execFileSync(process.env.NOTES_OFFLINE_B, args, { stdio: 'inherit', timeout: 30000 });

// The page's conflicts (window.notesPage.conflicts: what the panel lists, unclipped),
// the side panel's entries, and the editor lines marked.
const panel = (page) => page.evaluate(() => ({
  list: window.notesPage.conflicts(),
  items: [...document.querySelectorAll('li.conflict')].map((li) => ({
    text: li.textContent, line: li.dataset.line,
    keep: [...li.querySelectorAll('button.keep')].map((b) => ({ label: b.textContent, change: b.dataset.change })),
  })),
  marked: [...document.querySelectorAll('.cm-line.nc-conflict')].map((l) => l.textContent),
}));

export default async function conflicts(ctx) {
  const { browser, note } = ctx;
  const r = [];
  if (!process.env.NOTES_OFFLINE_B) {
    console.log('    skipped: needs two real daemons (daemons.sh sets NOTES_OFFLINE_B)');
    return r;
  }
  const a = await openPage(browser, note.urlA, { name: 'A' });
  const b = await openPage(browser, note.urlB, { name: 'B' });
  await waitEditor(a);
  await waitEditor(b);
  const tag = Date.now().toString(36);
  const line = `Budget ${tag}: 100 euros for the room`;
  await gotoEnd(a);
  await a.keyboard.press('Enter');
  await a.keyboard.type(line);
  await until(async () => (await editorText(b)).includes(line) && (await pendingCount(a)) === 0, 'B has the line');
  await until(async () => (await daemonText(note.textB, note.id)).includes(line), "B's replica has the line", 15000);

  // B goes offline and rewrites "100 euros" there; A rewrites it meanwhile
  offline('stop');
  offline('edit', '100 euros', '90 euros');
  await gotoAfter(a, `Budget ${tag}: `);
  await a.keyboard.down('Shift');
  for (let i = 0; i < '100 euros'.length; i++) await a.keyboard.press('ArrowRight');
  await a.keyboard.up('Shift');
  await a.keyboard.type('120 euros');
  await until(async () => (await pendingCount(a)) === 0, 'A took its edit');
  offline('start');

  // both sides merged: the line is marked on both pages, with both versions
  const seen = async (page) => {
    // the line on screen: CodeMirror draws only the lines in view
    await page.evaluate((m) => { const i = window.notesPage.text().indexOf(m); if (i >= 0) window.notesPage.reveal(i); }, `Budget ${tag}`);
    await sleep(50);
    const p = await panel(page);
    const k = p.list.find((x) => x.merged.includes(`Budget ${tag}`));
    const c = k && p.items.find((x) => x.line === String(k.line));
    const texts = k ? k.sides.map((x) => x.text).join('|') : '';
    return k && c && texts.includes('120 euros for the room') && texts.includes('90 euros for the room') &&
      c.keep.length === k.sides.length && p.marked.some((t) => t.includes(`Budget ${tag}`)) ? { c, k, p } : null;
  };
  const onA = await until(() => seen(a), 'page A shows the conflict', 30000).catch(() => null);
  check(r, !!onA, 'page A: the line rewritten on both sides is listed with both versions and marked in the editor', onA || await panel(a));
  await b.reload({ waitUntil: 'load' }); // B's daemon restarted: a fresh page
  await waitEditor(b, 20000);
  const onB = await until(() => seen(b), 'page B shows the conflict', 30000).catch(() => null);
  check(r, !!onB, 'page B: the same conflict, both versions', onB || await panel(b));
  check(r, onA && onA.k.sides.some((x) => x.name === 'Ana') && onA.k.sides.some((x) => x.name === 'Ben') &&
    /Ana/.test(onA.c.text) && /Ben/.test(onA.c.text), 'both authors are named', onA && onA.k.sides);
  const merged = (await editorText(a)).split('\n').find((l) => l.startsWith(`Budget ${tag}`));
  // (B's `notes edit` replaced "10" by "9", A the whole "100 euros": the CRDT keeps
  // what both inserted, "120 euros" and "9", in one line that is neither version)
  check(r, merged && merged.includes('120 euros') && /9/.test(merged.replace('120', '')) &&
    !merged.endsWith(': 90 euros for the room') && !merged.endsWith(': 120 euros for the room'),
  'until someone chooses, the text is the merge of both (what each typed is there)', merged);

  // one click on A keeps Ben's version
  if (onA) {
    const bens = onA.k.sides.find((x) => x.name === 'Ben');
    await a.click(`li.conflict[data-line="${onA.k.line}"] button.keep[data-change="${bens.change}"]`);
    const want = `Budget ${tag}: 90 euros for the room`;
    const done = async (page) => {
      const t = await editorText(page);
      const p = await panel(page);
      return t.includes(want) && !t.includes('120 euros') && !p.list.some((x) => x.merged.includes(`Budget ${tag}`)) &&
        !p.marked.some((l) => l.includes(`Budget ${tag}`));
    };
    check(r, await until(() => done(a), 'A keeps B\'s version', 20000).catch(() => false), "page A: one click kept Ben's version and the conflict is gone");
    check(r, await until(() => done(b), 'B sees it', 20000).catch(() => false), 'page B: the same text, no conflict left');
    for (const [side, spec] of [['A', note.textA], ['B', note.textB]]) {
      const t = await until(async () => { const x = await daemonText(spec, note.id); return x.includes(want) && !x.includes('120 euros') ? x : null; }, `${side} replica`, 15000).catch(() => null);
      check(r, t !== null, `${side}'s replica holds the kept version`);
    }
  }
  await sleep(100);
  await checkWatchers(r, a, 'A');
  await checkWatchers(r, b, 'B');
  await a.browserContext().close();
  await b.browserContext().close();
  return r;
}
