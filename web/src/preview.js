// The rendered preview: markdown-it with raw HTML off, then DOMPurify, then a few
// DOM-level touches (links open in a new tab without opener or referrer, images
// from anywhere but data: become links, task-list boxes). The result is a DOM
// fragment inserted as nodes: no string of note text is ever parsed as HTML by
// the page outside DOMPurify.
//
// This module and its libraries (about a quarter of the page's code) are a bundle
// of their own, dist/preview.js (entry preview-main.js), loaded once the editor is
// on screen: the note's text and the editor do not wait for them.
import MarkdownIt from 'markdown-it';
import DOMPurify from 'dompurify';
import { h } from './dom.js';

const md = new MarkdownIt({ html: false, linkify: true, typographer: false, breaks: false });

// markdown-it writes table alignment as style="text-align:…"; style attributes are
// refused by the CSP, so turn them into classes.
md.core.ruler.push('notes_align', (state) => {
  for (const t of state.tokens) {
    if ((t.type === 'th_open' || t.type === 'td_open') && t.attrs) {
      const style = t.attrGet('style') || '';
      t.attrs = t.attrs.filter((a) => a[0] !== 'style');
      const m = /text-align:(left|right|center)/.exec(style);
      if (m) t.attrJoin('class', `al-${m[1]}`);
    }
  }
});

// The common emoji shortcodes of meeting notes (HackMD writes ":dart: Agenda").
const EMOJI = {
  dart: '🎯', memo: '📝', pushpin: '📌', calendar: '📅', date: '📅', clipboard: '📋', bulb: '💡',
  warning: '⚠️', white_check_mark: '✅', heavy_check_mark: '✔️', x: '❌', question: '❓', exclamation: '❗',
  rocket: '🚀', tada: '🎉', fire: '🔥', star: '⭐', eyes: '👀', wave: '👋', point_right: '👉',
  spiral_notepad: '🗒️', busts_in_silhouette: '👥', bust_in_silhouette: '👤', link: '🔗', book: '📖',
  books: '📚', hourglass: '⌛', alarm_clock: '⏰', speech_balloon: '💬', thumbsup: '👍', '+1': '👍',
  thumbsdown: '👎', '-1': '👎', heart: '❤️', smile: '😄', construction: '🚧', gear: '⚙️', lock: '🔒',
  key: '🔑', mag: '🔍', checkered_flag: '🏁', trophy: '🏆', ballot_box_with_check: '☑️',
};
md.core.ruler.push('notes_emoji', (state) => {
  for (const block of state.tokens) {
    if (block.type !== 'inline' || !block.children) continue;
    for (const t of block.children) {
      if (t.type === 'text' && t.content.includes(':')) {
        t.content = t.content.replace(/:([a-z0-9_+-]{1,32}):/g, (m, k) => (Object.hasOwn(EMOJI, k) ? EMOJI[k] : m));
      }
    }
  }
});

let hooked = false;
function hook() {
  if (hooked) return;
  hooked = true;
  DOMPurify.addHook('uponSanitizeAttribute', (node, data) => {
    if (data.attrName === 'style' || data.attrName.startsWith('on')) data.keepAttr = false;
  });
}

const SAFE_IMG = /^data:image\/(?:png|gif|jpeg|webp);base64,[a-z0-9+/=\s]*$/i;

// env: from splitMarkdown (the note's reference definitions when this is a piece).
export function renderMarkdown(text, env) {
  hook();
  const html = md.render(text, env && env.references ? { references: { ...env.references } } : {});
  const frag = DOMPurify.sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'iframe', 'object', 'embed', 'svg', 'math', 'link', 'meta', 'base'],
    FORBID_ATTR: ['style', 'srcset', 'action', 'formaction', 'xlink:href', 'ping'],
    ALLOW_DATA_ATTR: false,
  });
  for (const a of frag.querySelectorAll('a')) {
    const href = a.getAttribute('href');
    if (href == null) continue;
    if (href.startsWith('#')) continue;
    a.setAttribute('rel', 'noopener noreferrer');
    a.setAttribute('target', '_blank');
    a.setAttribute('referrerpolicy', 'no-referrer');
  }
  // Images are fetched from nowhere: only inline data: images are shown; any other
  // becomes a link to it (the page never makes a request to another origin).
  for (const img of frag.querySelectorAll('img')) {
    const src = img.getAttribute('src') || '';
    if (SAFE_IMG.test(src)) continue;
    const alt = img.getAttribute('alt') || 'image';
    const repl = /^(https?:|mailto:)/i.test(src)
      ? h('a', { href: src, rel: 'noopener noreferrer', target: '_blank', referrerpolicy: 'no-referrer', class: 'img-link' }, `🖼 ${alt}`)
      : h('span', { class: 'img-link' }, `🖼 ${alt}`);
    img.replaceWith(repl);
  }
  // GitHub/HackMD task lists: "- [ ] text" / "- [x] text"
  for (const li of frag.querySelectorAll('li')) {
    let first = li.firstChild;
    if (first && first.nodeName === 'P') first = first.firstChild;
    if (!first || first.nodeType !== 3) continue;
    const m = /^\[([ xX])\]\s/.exec(first.nodeValue);
    if (!m) continue;
    first.nodeValue = first.nodeValue.slice(m[0].length);
    const box = h('span', { class: m[1] === ' ' ? 'task open' : 'task done', role: 'img', 'aria-label': m[1] === ' ' ? 'open' : 'done' }, m[1] === ' ' ? '☐' : '☑');
    first.parentNode.insertBefore(box, first);
    li.classList.add('task-item');
  }
  return frag;
}

// A line that may start a top-level block after a blank line: not indented (that
// would be code or a list item's continuation), not a list item, quote or table
// row (which would split one list, quote or table into two).
const CUT = /^[^\s>*+\-0-9|]/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const MAYBE_DEF = /^ {0,3}\[[^\]\n]+\]:/m;

// The note cut into pieces of about `target` characters that render on their own
// as they do in the whole: cuts only at a blank line followed by a line that
// starts a new top-level block, outside a fenced code block. Reference definitions
// ("[x]: url") apply to the whole note: when the text may have some, markdown-it's
// block pass over the whole finds them (env.references, for renderMarkdown).
// The pieces joined with "\n" are the text.
export function splitMarkdown(text, target = 8000) {
  const lines = text.split('\n');
  const chunks = [];
  let start = 0, size = 0, fence = null, blank = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (fence) {
      const m = FENCE.exec(l);
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && !l.slice(m[0].length).trim()) fence = null;
    } else {
      if (blank && size >= target && CUT.test(l)) {
        chunks.push(lines.slice(start, i).join('\n'));
        start = i;
        size = 0;
      }
      const m = FENCE.exec(l);
      if (m && !(m[1][0] === '`' && l.slice(m[0].length).includes('`'))) fence = m[1];
    }
    blank = !l.trim();
    size += l.length + 1;
  }
  chunks.push(lines.slice(start).join('\n'));
  const env = {};
  if (chunks.length > 1 && MAYBE_DEF.test(text)) md.block.parse(text, md, env, []);
  return { chunks, env };
}
