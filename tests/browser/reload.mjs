import { execSync } from 'node:child_process';
// (c) A page reloaded mid-typing loses nothing: what the daemon acknowledged is in
// the text after the reload, and so is what it had not acknowledged yet (kept in
// sessionStorage and pushed again), each exactly once, while the other page types.
// Against the mocks, also: the daemon's messages stalled (edits surely unacknowledged)
// at the reload, a dropped connection, and a daemon restart (a new epoch).
import { openPage, waitEditor, editorText, pendingCount, gotoEnd, gotoAfter, until, daemonText, sameText, check, checkWatchers, sleep } from './lib.mjs';

const once = (text, s) => text.split(s).length === 2;

async function converge(a, b) {
  let ea = '', eb = '';
  await until(async () => {
    ea = await editorText(a); eb = await editorText(b);
    return ea === eb && (await pendingCount(a)) === 0 && (await pendingCount(b)) === 0;
  }, 'the pages converge', 30000, 200).catch(() => {});
  return [ea, eb];
}

// B types tokens on its own line in the background until stop() is called.
function background(b, marker) {
  let on = true;
  const typed = [];
  const done = (async () => {
    await gotoAfter(b, marker);
    for (let i = 0; on; i++) {
      const t = `<b${i}>`;
      await b.keyboard.type(t, { delay: 15 });
      typed.push(t);
      await sleep(60);
    }
  })();
  return { typed, stop: async () => { on = false; await done; } };
}

export default async function reload(ctx) {
  const { browser, note, mocks, dev } = ctx;
  const r = [];
  const a = await openPage(browser, note.urlA, { name: 'A' });
  const b = await openPage(browser, note.urlB, { name: 'B' });
  await a.evaluateOnNewDocument(() => {
    addEventListener('pagehide', () => { try { sessionStorage.setItem('__t_last', window.notesPage.text()); } catch { /* none */ } });
  });
  await waitEditor(a);
  await waitEditor(b);
  const mA = `Reload ${Date.now().toString(36)}:`, mB = `Other ${Date.now().toString(36)}:`;
  await gotoEnd(a);
  await a.keyboard.press('Enter');
  await a.keyboard.type(`${mA} `);
  await a.keyboard.press('Enter');
  await a.keyboard.type(`${mB} `);
  await until(async () => (await editorText(b)).includes(mB), 'B has the lines');
  const bg = background(b, mB);

  // 1. reload right after typing (stalled daemon against the mocks: surely unacknowledged)
  await gotoAfter(a, mA);
  if (mocks) await dev(mocks.a, 'stall', { ms: 1500 });
  const chunk1 = '[one héllo 日本語 😀 ';
  await a.keyboard.type(chunk1);
  await a.keyboard.press('Enter');
  await a.keyboard.type('two]');
  const pend = await pendingCount(a);
  const confirmed = await a.evaluate(() => window.notesPage.confirmedText());
  console.log(`    ${pend} edit(s) not acknowledged at the reload`);
  await a.reload({ waitUntil: 'load' });
  await waitEditor(a);
  let t = await until(async () => { const x = await editorText(a); return x.includes('two]') ? x : null; }, 'the edits are back after the reload').catch(() => editorText(a));
  check(r, t.includes(`${chunk1}\ntwo]`) && once(t, chunk1), 'after the reload the typed text is there, once', t.slice(t.indexOf(mA), t.indexOf(mA) + 80));
  check(r, !confirmed.includes(mA) || t.includes(mA), 'what the daemon had acknowledged is there');
  if (mocks) check(r, pend > 0, 'there were unacknowledged edits at the reload (daemon stalled)', pend);

  // 2. reload while the keys are still coming (no stall)
  await gotoAfter(a, 'two]');
  const tokens = [];
  const typing = (async () => {
    for (let i = 0; i < 60; i++) {
      const tok = `(r${i}ü)`;
      try { await a.keyboard.type(tok, { delay: 12 }); } catch { break; }
      tokens.push(tok);
    }
  })();
  await sleep(700);
  await a.reload({ waitUntil: 'load' }).catch(() => {});
  await typing.catch(() => {});
  await waitEditor(a);
  const last = await a.evaluate(() => sessionStorage.getItem('__t_last') || '');
  const seenBefore = tokens.filter((x) => last.includes(x));
  t = await editorText(a);
  const lost = seenBefore.filter((x) => !t.includes(x));
  console.log(`    ${seenBefore.length} token(s) were in the editor when the page unloaded`);
  check(r, seenBefore.length > 0 && lost.length === 0, 'every token in the editor at unload is there after the reload', { before: seenBefore.length, lost });
  check(r, tokens.every((x) => t.split(x).length <= 2), 'no token doubled by the reload');

  if (mocks) {
    // 3. the connection drops while typing
    await gotoAfter(a, 'two]');
    await a.keyboard.press('Enter');
    await a.keyboard.type('[drop ');
    await dev(mocks.a, 'drop', { note: note.id });
    await a.keyboard.type('while away]');
    await until(async () => a.evaluate(() => window.notesPage.connected()), 'reconnected');
    // 4. the daemon restarts (a new epoch) with edits not yet acknowledged
    await dev(mocks.a, 'stall', { ms: 800 });
    await a.keyboard.type(' [restart ');
    await dev(mocks.a, 'restart');
    await a.keyboard.type('after]');
    await sleep(1000);
    await until(async () => a.evaluate(() => window.notesPage.connected()), 'reconnected after the restart');
  } else if (process.env.NOTES_RESTART_A) {
    // 4. a real daemon restarted (SIGTERM, then started again) while its page
    // is open and typing: the page reconnects and resyncs.
    await gotoAfter(a, 'two]');
    await a.keyboard.press('Enter');
    await a.keyboard.type('[restart ');
    execSync(process.env.NOTES_RESTART_A, { stdio: 'inherit', timeout: 20000 });
    await a.keyboard.type('after]');
    await sleep(1000);
    await until(async () => a.evaluate(() => window.notesPage.connected()), 'reconnected after the restart', 20000);
    for (const m of a.watch.console.filter((x) => x.includes('new epoch'))) console.log(`    page A: ${m}`);
  }
  await bg.stop();
  const [ea, eb] = await converge(a, b);
  check(r, ea === eb, 'both pages end with the same text', { a: ea.length, b: eb.length });
  check(r, once(ea, `${chunk1}\ntwo]`), 'the first reload\'s text is there once');
  const lostB = bg.typed.filter((x) => !once(ea, x));
  check(r, lostB.length === 0, `the other page's ${bg.typed.length} tokens are there once`, lostB);
  const lostA = seenBefore.filter((x) => !once(ea, x));
  check(r, lostA.length === 0, 'the second reload\'s tokens are there once', { lostA, text: ea.slice(ea.indexOf(mA), ea.indexOf(mA) + 600) });
  if (!mocks && process.env.NOTES_RESTART_A)
    check(r, once(ea, '[restart after]') && once(ea, '[rest'), 'text typed across a real daemon restart is there once (nothing lost, nothing doubled)', ea.slice(ea.indexOf(mA), ea.indexOf(mA) + 600));
  if (mocks) {
    check(r, once(ea, '[drop while away]'), 'text typed while the connection was down is there once', ea.slice(ea.indexOf(mA), ea.indexOf(mA) + 120));
    check(r, once(ea, ' [restart after]'), 'text typed across a daemon restart is there once', ea.slice(ea.indexOf(mA), ea.indexOf(mA) + 120));
  }
  if (note.textA) {
    const da = await until(async () => { const x = await daemonText(note.textA, note.id); return sameText(x, ea) ? x : null; }, 'A daemon', 10000).catch(() => null);
    check(r, da !== null, "A's daemon holds the pages' text");
  }
  if (note.textB) {
    const db = await until(async () => { const x = await daemonText(note.textB, note.id); return sameText(x, ea) ? x : null; }, 'B daemon', 10000).catch(() => null);
    check(r, db !== null, "B's daemon holds the pages' text");
  }
  await checkWatchers(r, a, 'A');
  await checkWatchers(r, b, 'B');
  await a.browserContext().close();
  await b.browserContext().close();
  return r;
}
