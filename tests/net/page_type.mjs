// page_type.mjs URL TEXT [MARKER]: open a note's page of `notes serve` (the URL
// that `notes open NOTE --no-browser` prints) in headless Chromium, type TEXT as
// a new line with real key events, at the end of the note or right after the
// first MARKER in it, and wait until the daemon has taken it
// (no edit of the page left unacknowledged). The NAT test (nat.sh) runs it
// inside a laptop's network namespace: the page is one of the ways people
// write during the call. Exit 0 when done, 1 with a message otherwise.
import { launch, openPage, waitEditor, gotoEnd, gotoAfter, pendingCount, editorText, until } from '../browser/lib.mjs';

const [url, text, marker] = process.argv.slice(2);
if (!url || !text) {
  console.error('usage: page_type.mjs URL TEXT');
  process.exit(2);
}
let browser;
try {
  browser = await launch();
  const page = await openPage(browser, url, { name: 'page' });
  await waitEditor(page, 20000);
  if (marker) await gotoAfter(page, marker);
  else await gotoEnd(page);
  await page.keyboard.press('Enter');
  await page.keyboard.type(text, { delay: 5 });
  await until(async () => (await editorText(page)).includes(text), 'the text in the editor', 10000);
  await until(async () => (await pendingCount(page)) === 0, 'the daemon to take every edit', 20000);
  if (page.watch.errors.length) throw new Error(`page errors: ${page.watch.errors.join('; ')}`);
  await browser.close();
  process.exit(0);
} catch (e) {
  console.error(`page_type: ${e.message}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
