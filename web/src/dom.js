// Tiny DOM helpers. Every string goes in as a text node or an attribute value set
// through the DOM, never through innerHTML: note text, names and messages from the
// daemon reach the page escaped by construction.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// clear(), unless the children would be drawn exactly as they are: a status line or
// the people list redrawn to the same markup still costs the page a style pass, a
// layout and a paint (and re-announces an aria-live region), and those two are asked
// for at every key's acknowledgement and every cursor move of anyone on the note. For
// children without listeners: their markup is all they are. Markup is read here, never
// assigned.
export function redraw(el, ...children) {
  const next = append(document.createElement(el.tagName), children);
  if (next.innerHTML !== el.innerHTML) el.replaceChildren(...next.childNodes);
  return el;
}

// The nonce the daemon put into <meta name="csp-nonce">: CodeMirror's injected
// styles and our per-person colour rules carry it (style-src 'self' 'nonce-…').
export function cspNonce() {
  const m = document.querySelector('meta[name="csp-nonce"]');
  const v = m ? m.getAttribute('content') : '';
  return v && v !== '{{NONCE}}' ? v : '';
}

export function relTime(ms, now = Date.now()) {
  if (!ms) return 'never';
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

export function clockTime(ms) {
  const d = new Date(ms);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

// Same-origin JSON API call. POSTs always carry Content-Type: application/json
// (the daemon refuses other types: a cross-site form cannot send it).
export async function api(path, body) {
  const init = { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) throw new Error((data && typeof data.error === 'string' && data.error) || `${res.status} ${res.statusText}`);
  return data;
}
