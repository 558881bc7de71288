// (b) Each page shows the other's cursor (a caret labelled with the other's name,
// where the other's cursor really is) and selection; the presence list on each page
// names both, with the key fingerprint on hover.
import { openPage, waitEditor, editorText, pendingCount, gotoEnd, gotoAfter, until, check, checkWatchers } from './lib.mjs';

async function remoteOf(page, session) {
  return page.evaluate((s) => window.notesPage.remoteCursors().find((p) => p.session === s) || null, session);
}

async function seesCursor(r, viewer, other, label) {
  const me = await other.evaluate(() => window.notesPage.me());
  const sel = await other.evaluate(() => window.notesPage.selection()[0]);
  let seen = null;
  try {
    seen = await until(async () => {
      const x = await remoteOf(viewer, me.session);
      return x && x.ranges[0] && x.ranges[0].head === sel.head && x.ranges[0].anchor === sel.anchor ? x : null;
    }, `${label}: the other's cursor at ${sel.anchor}-${sel.head}`, 10000);
  } catch (e) {
    check(r, false, `${label} shows the other's cursor where it is`, { want: sel, got: await remoteOf(viewer, me.session) });
    return;
  }
  check(r, true, `${label} shows the other's cursor where it is (${sel.anchor}→${sel.head})`);
  check(r, seen.name === me.name, `${label}: the cursor is labelled with the other's name (${me.name})`, seen.name);
  // the layer draws in the editor's next measure cycle: poll until it has
  const look = () => viewer.evaluate((s, pos) => {
    const caret = document.querySelector(`.cm-remote-caret[data-session="${s}"]`);
    const where = window.notesPage.coordsAt(pos);
    if (!caret) return { where };
    const rc = caret.getBoundingClientRect();
    return { label: caret.querySelector('.cm-remote-name')?.textContent, left: rc.left, top: rc.top, sel: document.querySelectorAll('.cm-remote-sel').length, where };
  }, me.session, sel.head);
  const near = (d) => d && d.where && d.left !== undefined && Math.abs(d.left - d.where.left) < 4 && Math.abs(d.top - d.where.top) < 6;
  const dom = await until(async () => { const d = await look(); return near(d) ? d : null; }, 'caret drawn', 3000).catch(() => look());
  check(r, dom && dom.label === me.name, `${label}: the caret's label in the page reads "${me.name}"`, dom);
  check(r, near(dom), `${label}: the caret is drawn at that position`, dom);
  if (sel.anchor !== sel.head) check(r, dom && dom.sel > 0, `${label}: the other's selection is drawn`, dom);
}

async function presenceList(page) {
  return page.evaluate(() => [...document.querySelectorAll('.presence li[data-session]')].map((li) => ({
    session: li.dataset.session, name: li.querySelector('.name')?.textContent, title: li.title })));
}

// The side panel's Confirm button: A writes a decision, B confirms it; B's panel
// (and A's, through the peers' sync; the mocks do not sync confirmations) reads
// "✓ confirmed by" B's name, and B's button is gone.
async function confirmDecision(r, a, b, synced) {
  const text = `Confirm test ${Date.now().toString(36)}`;
  await gotoEnd(a);
  // The item goes between two headings, typed without an Enter after it: Enter
  // would continue the list (Markdown keymap) and so would the tests after this one.
  await a.keyboard.type('\n## Decisions\n\n## After the decisions');
  await a.keyboard.press('ArrowUp');
  await a.keyboard.type(`- ${text}`);
  await until(async () => (await pendingCount(a)) === 0, 'A confirmed');
  const tail = (await editorText(a)).split('\n').slice(-4);
  check(r, tail[tail.length - 1] === '## After the decisions' && tail[tail.length - 2] === `- ${text}`, 'A: the decision is written, the list ended', tail);
  const item = (page) => page.evaluate((t) => {
    const li = [...document.querySelectorAll('.side li.item')].find((x) => x.querySelector('.text')?.textContent === t);
    if (!li) return null;
    return { id: li.dataset.item || null, button: !!li.querySelector('button[data-action="confirm"]:not([disabled])'),
      confirmed: li.querySelector('[data-conf="confirmed"]')?.textContent || null };
  }, text);
  let got = null;
  try {
    got = await until(async () => { const x = await item(b); return x && x.id && x.button ? x : null; }, 'B shows the decision with a Confirm button', 15000);
  } catch { /* reported below */ }
  check(r, !!got, 'B: a committed decision has a Confirm button in the side panel', got || await item(b));
  if (!got) return;
  const meB = await b.evaluate(() => window.notesPage.me());
  const nameB = (meB.person && meB.person.name) || meB.name;
  await b.click(`.side li.item[data-item="${got.id}"] button[data-action="confirm"]`);
  for (const [p, label] of synced ? [[b, 'B'], [a, 'A']] : [[b, 'B']]) {
    let x = null;
    try {
      x = await until(async () => { const y = await item(p); return y && y.confirmed ? y : null; }, `${label} shows the confirmation`, 15000);
    } catch { x = await item(p); }
    check(r, x && x.confirmed && x.confirmed.includes('confirmed by') && x.confirmed.includes(nameB),
      `${label}: the side panel reads "✓ confirmed by ${nameB}"`, x);
    if (p === b) check(r, x && !x.button, 'B: no Confirm button once B has confirmed', x);
  }
}

export default async function presence(ctx) {
  const { browser, note } = ctx;
  const r = [];
  const a = await openPage(browser, note.urlA, { name: 'A' });
  const b = await openPage(browser, note.urlB, { name: 'B' });
  await waitEditor(a);
  await waitEditor(b);
  const marker = `Presence ${Date.now().toString(36)}:`;
  await gotoEnd(a);
  await a.keyboard.press('Enter');
  await a.keyboard.type(`${marker} alpha beta gamma`);
  await until(async () => (await editorText(b)).includes(`${marker} alpha beta gamma`), 'B has the line');
  await until(async () => (await pendingCount(a)) === 0, 'A confirmed');
  // A: a selection over "gamma" (Shift+ArrowLeft ×5); B: a cursor after the marker
  await gotoAfter(a, marker);
  await a.keyboard.down('Shift');
  for (let i = 0; i < 5; i++) await a.keyboard.press('ArrowLeft');
  await a.keyboard.up('Shift');
  await gotoAfter(b, marker);
  for (let i = 0; i < 6; i++) await b.keyboard.press('ArrowLeft');
  await seesCursor(r, b, a, 'B');
  await seesCursor(r, a, b, 'A');
  // the other types: the caret follows
  await b.keyboard.type('δ');
  await seesCursor(r, a, b, 'A after B typed');

  const meA = await a.evaluate(() => window.notesPage.me());
  const meB = await b.evaluate(() => window.notesPage.me());
  for (const [p, label] of [[a, 'A'], [b, 'B']]) {
    let list = [];
    try {
      list = await until(async () => {
        const l = await presenceList(p);
        return l.some((x) => x.session === meA.session) && l.some((x) => x.session === meB.session) ? l : null;
      }, 'both in the presence list', 10000);
    } catch { list = await presenceList(p); }
    const ea = list.find((x) => x.session === meA.session), eb = list.find((x) => x.session === meB.session);
    check(r, ea && eb, `${label}: the presence list shows both people`, list);
    check(r, ea && ea.name === meA.name && eb && eb.name === meB.name, `${label}: with their names`, list);
    check(r, ea && ea.title.includes(meA.fp) && eb && eb.title.includes(meB.fp), `${label}: the key fingerprint on hover`, list);
  }
  // A cursor move redraws the other's caret, not the people list: the list's items are
  // the same nodes after it (note-page.js draws it through dom.js's redraw)
  await a.evaluate(() => { for (const li of document.querySelectorAll('.presence li')) li.__kept = true; });
  await b.keyboard.press('ArrowRight');
  await b.keyboard.press('ArrowRight');
  await seesCursor(r, a, b, 'A after B moved');
  const kept = await a.evaluate(() => [...document.querySelectorAll('.presence li')].map((li) => li.__kept === true));
  check(r, kept.length >= 2 && kept.every(Boolean), 'A: a cursor move leaves the people list as it was drawn', kept);
  await confirmDecision(r, a, b, !ctx.mocks);
  await checkWatchers(r, a, 'A');
  await checkWatchers(r, b, 'B');
  // a page that leaves disappears from the other's list
  const sessionB = meB.session;
  await b.browserContext().close();
  try {
    await until(async () => !(await presenceList(a)).some((x) => x.session === sessionB), 'B leaves the list', 10000);
    check(r, true, 'a page that closes leaves the presence list');
  } catch { check(r, false, 'a page that closes leaves the presence list', await presenceList(a)); }
  await a.browserContext().close();
  return r;
}
