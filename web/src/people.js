// Person colours. The daemon sends a colour per person ("#rrggbb"); for an author it
// has not described yet the page derives the same default from the fingerprint
// (FNV-1a 32 of the fingerprint string, modulo the palette). Colours reach CSS only
// through rules inserted with CSSOM into a <style nonce> element, after validation,
// so no inline style attribute is ever needed (CSP).
import { cspNonce } from './dom.js';

export const PALETTE = ['#d1495b', '#2e86ab', '#3a7d44', '#8e44ad', '#e07a1f', '#00897b',
  '#c2185b', '#5c6bc0', '#6d4c41', '#7cb342', '#0097a7', '#f4511e'];

export function fnv1a(s) {
  let x = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { x ^= s.charCodeAt(i); x = Math.imul(x, 0x01000193) >>> 0; }
  return x >>> 0;
}
export const defaultColor = (fp) => PALETTE[fnv1a(String(fp || '')) % PALETTE.length];
export const validColor = (c) => typeof c === 'string' && /^#[0-9a-fA-F]{6}$/.test(c);

export class People {
  constructor() {
    this.byFp = new Map();
    this.listeners = new Set();
    const style = document.createElement('style');
    const nonce = cspNonce();
    if (nonce) style.setAttribute('nonce', nonce);
    document.head.append(style);
    this.sheet = style.sheet;
  }

  // {fp, name, color, known} → the registry entry {fp, name, color, cls, known}.
  // fp is what the daemon shows for a key: a person's fingerprint when the device
  // is linked to one (docs/trust.md), else the device's.
  note(p) {
    const fp = typeof p.fp === 'string' ? p.fp : typeof p.fingerprint === 'string' ? p.fingerprint : '';
    if (!fp) return null;
    let e = this.byFp.get(fp);
    const color = validColor(p.color) ? p.color.toLowerCase() : null;
    if (!e) {
      const idx = this.byFp.size;
      e = { fp, name: null, color: this.distinct(color || defaultColor(fp)), cls: `nc-p${idx}`, given: color };
      this.byFp.set(fp, e);
      this.rule(e);
    } else if (color && color !== e.given) {
      e.given = color;
      e.color = this.distinct(color, e);
      this.rule(e);
    }
    if (typeof p.name === 'string' && p.name) e.name = p.name;
    if (typeof p.known === 'boolean') e.known = p.known;
    return e;
  }

  // A device fingerprint that stands for a person: text by that device (updates
  // carry the device as `author`) gets the person's entry, colour and name.
  alias(deviceFp, e) {
    if (typeof deviceFp === 'string' && deviceFp && e && deviceFp !== e.fp) this.byFp.set(deviceFp, e);
  }

  // Two people on one page never share a colour: a colour already taken here is
  // replaced by the first palette colour nobody here has (so colours may differ
  // from page to page when the daemon's choices collide).
  distinct(color, self = null) {
    const used = new Set([...this.byFp.values()].filter((x) => x !== self && x.color).map((x) => x.color));
    if (!used.has(color)) return color;
    return PALETTE.find((c) => !used.has(c)) || color;
  }

  get(fp) { return this.byFp.get(fp) || this.note({ fp }); }

  // A later rule wins over an earlier one of the same specificity: a changed colour
  // just appends a rule.
  rule(e) {
    if (this.sheet) this.sheet.insertRule(`.${e.cls}{--pc:${e.color}}`, this.sheet.cssRules.length);
  }

  label(fp) {
    const e = this.get(fp);
    return e && e.name ? e.name : fp || 'unknown';
  }
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return Array.from(s).slice(0, 2).join('').toUpperCase();
}
