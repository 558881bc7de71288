// The index page: the replica's notes, newest first; a new meeting; a .md import.
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

  clear(app,
    h('header', { class: 'topbar' }, h('h1', { class: 'title' }, 'Notes'), h('span', { class: 'meta' }, 'on this laptop')),
    h('main', { class: 'index-main' },
      h('section', { class: 'actions' }, form,
        h('label', { class: 'import' }, 'Import a .md file ', file)),
      msgEl, listEl));

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
