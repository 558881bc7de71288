// The index page: the replica's notes, newest first; a new meeting; a .md import;
// a search box over every note (GET /api/search, docs/formats.md "Search").
import { h, clear, api, relTime } from './dom.js';

const MAX_IMPORT = 8 << 20; // the daemon's Markdown limit (NOTES_MD_MAX_BYTES)
const idOk = (id) => typeof id === 'string' && /^[0-9a-f]{32}$/.test(id);

export function indexPage(app) {
  const listEl = h('div', { class: 'note-list', 'aria-live': 'polite' }, h('p', { class: 'empty' }, 'Loading…'));
  const msgEl = h('p', { class: 'message', role: 'status' });
  const title = h('input', { type: 'text', name: 'title', placeholder: 'Meeting title', maxlength: 200, 'aria-label': 'Title of the new meeting' });
  const file = h('input', { type: 'file', accept: '.md,.markdown,text/markdown,text/plain', class: 'file', 'aria-label': 'Markdown file to import' });
  const say = (text, bad) => { clear(msgEl, text || ''); msgEl.className = bad ? 'message error' : 'message'; };

  const form = h('form', { class: 'new-note', onsubmit: async (ev) => {
    ev.preventDefault();
    const t = title.value.trim();
    say('Creating…');
    try {
      const r = await api('/api/notes', { template: 'meeting', title: t || `Meeting ${new Date().toISOString().slice(0, 10)}` });
      if (!idOk(r && r.id)) throw new Error('the daemon gave no note id');
      location.assign(`/n/${r.id}`);
    } catch (e) { say(`Cannot create the note: ${e.message}`, true); }
  } }, title, h('button', { type: 'submit', class: 'primary', 'data-action': 'new' }, 'New meeting'));

  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    if (f.size > MAX_IMPORT) { say(`${f.name} is larger than 8 MiB.`, true); file.value = ''; return; }
    say(`Importing ${f.name}…`);
    try {
      const markdown = await f.text();
      const r = await api('/api/import', { markdown });
      if (!idOk(r && r.id)) throw new Error('the daemon gave no note id');
      location.assign(`/n/${r.id}`);
    } catch (e) { say(`Cannot import ${f.name}: ${e.message}`, true); }
    file.value = '';
  });

  // Search: results replace the list while the box holds a query. Typing
  // waits 250 ms; an older answer arriving late is dropped.
  const query = h('input', { type: 'search', name: 'q', placeholder: 'Search: words, "a phrase", owner:RD, tag:, participant:, after:2023-01-01', maxlength: 500, 'aria-label': 'Search every note' });
  const resultsEl = h('div', { class: 'search-results', 'aria-live': 'polite', hidden: true });
  let asked = 0, timer = 0;
  const search = async () => {
    const q = query.value.trim();
    const mine = ++asked;
    if (!q) { resultsEl.hidden = true; listEl.hidden = false; clear(resultsEl); return; }
    try {
      const r = await api(`/api/search?q=${encodeURIComponent(q)}&limit=50`);
      if (mine !== asked) return;
      showResults(resultsEl, r);
    } catch (e) {
      if (mine !== asked) return;
      clear(resultsEl, h('p', { class: 'error' }, `Search: ${e.message}`));
    }
    resultsEl.hidden = false;
    listEl.hidden = true;
  };
  query.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 250); });
  const searchForm = h('form', { class: 'search', role: 'search', onsubmit: (ev) => { ev.preventDefault(); clearTimeout(timer); search(); } },
    query, h('button', { type: 'submit', 'data-action': 'search' }, 'Search'));

  clear(app,
    h('header', { class: 'topbar' }, h('h1', { class: 'title' }, 'Notes'), h('span', { class: 'meta' }, 'on this laptop')),
    h('main', { class: 'index-main' },
      h('section', { class: 'actions' }, form,
        h('label', { class: 'import' }, 'Import a .md file ', file)),
      searchForm, msgEl, resultsEl, listEl));

  const load = async () => {
    try {
      const r = await api('/api/notes');
      const notes = (r && Array.isArray(r.notes) ? r.notes : []).filter((n) => n && idOk(n.id));
      notes.sort((a, b) => (b.updated_ms || 0) - (a.updated_ms || 0));
      if (!notes.length) { clear(listEl, h('p', { class: 'empty' }, 'No notes yet.')); return; }
      clear(listEl, h('ul', { class: 'notes' }, notes.map((n) => h('li', { 'data-id': n.id },
        h('a', { href: `/n/${n.id}`, class: 'note-link' }, n.title || (n.datetime ? `Meeting of ${n.datetime}` : 'Untitled note')),
        h('span', { class: 'when' }, n.datetime || ''),
        h('span', { class: 'updated', title: n.updated_ms ? new Date(n.updated_ms).toString() : null },
          `changed ${relTime(n.updated_ms)}`),
        h('span', { class: 'changes' }, `${n.changes ?? 0} change${n.changes === 1 ? '' : 's'}`)))));
    } catch (e) {
      clear(listEl, h('p', { class: 'error' }, `Cannot list the notes: ${e.message}`));
    }
  };
  load();
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') load(); });
}

// Text with its matches in <mark>: marks are [start, end) in code points.
function marked(text, marks) {
  const cps = Array.from(typeof text === 'string' ? text : '');
  const out = [];
  let at = 0;
  for (const m of Array.isArray(marks) ? marks : []) {
    const [a, b] = Array.isArray(m) ? m : [];
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < at || b < a || b > cps.length) continue;
    out.push(cps.slice(at, a).join(''), h('mark', {}, cps.slice(a, b).join('')));
    at = b;
  }
  out.push(cps.slice(at).join(''));
  return out;
}

function showResults(el, r) {
  const hits = (r && Array.isArray(r.results) ? r.results : []).filter((x) => x && idOk(x.id));
  if (!hits.length) { clear(el, h('p', { class: 'empty' }, 'No note matches.')); return; }
  const more = (r.total || 0) - hits.length;
  clear(el,
    h('p', { class: 'search-count' }, `${r.total} note${r.total === 1 ? '' : 's'} match${r.total === 1 ? 'es' : ''}`),
    h('ul', { class: 'hits' }, hits.map((x) => h('li', { 'data-id': x.id },
      h('div', { class: 'hit-head' },
        h('a', { href: `/n/${x.id}`, class: 'note-link' },
          x.title ? marked(x.title, x.title_marks) : (x.datetime ? `Meeting of ${x.datetime}` : 'Untitled note')),
        h('span', { class: 'when' }, (x.datetime || '').slice(0, 10)),
        h('code', { class: 'id' }, x.id.slice(0, 8)),
        x.damaged ? h('span', { class: 'error' }, 'damaged: notes verify') : null),
      (Array.isArray(x.lines) ? x.lines : []).map((l) => h('div', { class: 'hit-line' },
        h('span', { class: 'lineno' }, String(l.line)), h('span', { class: 'text' }, marked(l.text, l.marks)))),
      x.more_lines ? h('div', { class: 'hit-more' }, `${x.more_lines} more matching line${x.more_lines === 1 ? '' : 's'}`) : null))),
    more > 0 ? h('p', { class: 'empty' }, `${more} more: narrow the search`) : null);
}
