import { h, api, num, table, ago, time } from './dom.js';

const size = 50;

export async function devicesPage(main) {
  let q = '', page = 0, timer;
  const search = h('input', { id: 'device-search', type: 'search', placeholder: 'Search client id, identity or address', size: 36,
    oninput: () => { clearTimeout(timer); timer = setTimeout(() => { q = search.value; page = 0; load(); }, 250); } });
  const info = h('span', { class: 'muted', id: 'device-count' });
  const prev = h('button', { type: 'button', onclick: () => { page--; load(); } }, '‹ Prev');
  const next = h('button', { type: 'button', onclick: () => { page++; load(); } }, 'Next ›');
  const list = h('div', { id: 'devices' });
  main.replaceChildren(h('h1', {}, 'Devices'), h('div', { class: 'controls' }, search, info), list,
    h('div', { class: 'pager' }, prev, next));
  async function load() {
    const d = await api(`devices?q=${encodeURIComponent(q)}&page=${page}&size=${size}`);
    const from = d.matched ? d.page * d.size + 1 : 0;
    info.textContent = `${num(from)}–${num(d.page * d.size + d.devices.length)} of ${num(d.matched)}` +
      (q ? ` matching (${num(d.total)} connected)` : ' connected');
    prev.disabled = d.page === 0;
    next.disabled = (d.page + 1) * d.size >= d.matched;
    list.replaceChildren(table([
      { label: 'Client id', get: c => c.client_id },
      { label: 'Identity', get: c => c.identity || '(anonymous)' },
      { label: 'Remote address', get: c => c.remote },
      { label: 'Protocol', get: c => c.protocol },
      { label: 'Connected since', get: c => h('span', { title: time(c.since) }, ago(c.since)) },
      { label: 'Messages in', num: true, get: c => num(c.messages_in) },
      { label: 'Last publish', get: c => c.last_publish ? h('span', { title: time(c.last_publish) }, ago(c.last_publish)) : 'never' },
      { label: 'Refusals', num: true, get: c => num(c.refusals) },
    ], d.devices));
  }
  await load();
  return { onOverview: () => load().catch(() => {}) };
}
