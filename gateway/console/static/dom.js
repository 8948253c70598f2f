// Small DOM and fetch helpers. Text always goes in through textContent:
// client ids, topics and payloads come from devices.

export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

export function table(cols, rows) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map(c => h('th', { class: c.num ? 'num' : null }, c.label)))),
    h('tbody', {}, rows.length ? rows.map(r => h('tr', {}, cols.map(c => {
      const v = c.get(r);
      return h('td', { class: c.num ? 'num' : null }, v);
    }))) : h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, 'none')))));
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function bytes(n) {
  if (n == null || isNaN(n)) return '–';
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + ' ' + units[i];
}
export function num(n, digits = 0) {
  if (n == null || isNaN(n)) return '–';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
export function dur(s) {
  if (!s || s < 0) return '0 s';
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';
}
export function time(ms) { return ms ? new Date(ms).toLocaleString() : '–'; }
export function ago(ms) { return ms ? dur((Date.now() - ms) / 1000) + ' ago' : '–'; }
export function badge(text, cls) { return h('span', { class: 'badge ' + (cls || text) }, text); }

let session = { csrf: '' };
export function setSession(s) { session = s; }
export function getSession() { return session; }

export class HttpError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

export async function api(path, body) {
  const opts = { credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['X-Weir-Csrf'] = session.csrf || '';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch('/console/api/' + path, opts);
  let data = null;
  try { data = await r.json(); } catch { /* empty body */ }
  if (!r.ok) throw new HttpError(r.status, (data && data.error) || r.statusText);
  return data;
}

export function toast(msg, error) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = error ? 'error' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

// confirmAction asks before anything changes, then runs fn.
export function confirmAction(title, text, fn) {
  const m = document.getElementById('modal');
  document.getElementById('modal-title').textContent = title;
  document.getElementById('modal-text').textContent = text;
  const ok = document.getElementById('modal-ok');
  const cancel = document.getElementById('modal-cancel');
  m.hidden = false;
  ok.focus();
  const close = () => { m.hidden = true; ok.onclick = null; cancel.onclick = null; };
  cancel.onclick = close;
  ok.onclick = async () => {
    close();
    try { await fn(); toast(title + ': done'); } catch (e) { toast(title + ': ' + e.message, true); }
  };
}
