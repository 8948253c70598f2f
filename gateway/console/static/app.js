// The console: a hash router over four pages, one EventSource for the
// overview pushed every sample, and a login when the gateway has API
// credentials.
import { h, api, setSession, getSession, toast, HttpError } from './dom.js';
import { destroyCharts } from './charts.js';
import { overviewPage } from './overview.js';
import { streamsPage } from './streams.js';
import { devicesPage } from './devices.js';
import { recordsPage } from './records.js';

const pages = { overview: overviewPage, streams: streamsPage, devices: devicesPage, records: recordsPage };
const main = document.getElementById('main');
let current = null; // { name, onOverview, close }
let events = null;
let lastOverview = null;

function showLogin(message) {
  closePage();
  const err = h('p', { class: 'err' }, message || '');
  const id = h('input', { id: 'login-id', autocomplete: 'username', required: true });
  const secret = h('input', { id: 'login-secret', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card login', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const s = await api('login', { access_key_id: id.value.trim(), secret_access_key: secret.value });
      setSession(s);
      start();
    } catch (ex) { err.textContent = ex.message; }
  } },
  h('h1', {}, 'Log in'),
  h('p', { class: 'muted' }, 'With an access key of the API’s credentials file: viewing needs read, actions need admin.'),
  h('label', { for: 'login-id' }, 'Access key id'), id,
  h('label', { for: 'login-secret' }, 'Secret access key'), secret,
  h('p', {}, h('button', { class: 'primary', type: 'submit' }, 'Log in')), err);
  main.replaceChildren(form);
  id.focus();
}

function renderWho() {
  const s = getSession();
  const who = document.getElementById('who');
  who.replaceChildren();
  if (!s.login_required) { who.append('open (no credentials file)'); return; }
  who.append(s.key_id + (s.admin ? ' · admin' : ' · read'),
    h('button', { type: 'button', onclick: async () => { await api('logout', {}).catch(() => {}); location.reload(); } }, 'Log out'));
}

function closePage() {
  if (current && current.close) current.close();
  destroyCharts();
  current = null;
}

async function route() {
  const name = (location.hash.replace(/^#\/?/, '').split('?')[0]) || 'overview';
  const page = pages[name] || pages.overview;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
  closePage();
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    current = await page(main, { overview: () => lastOverview, admin: getSession().admin });
    current.name = name;
    if (lastOverview && current.onOverview) current.onOverview(lastOverview);
  } catch (e) {
    if (e instanceof HttpError && e.status === 401) { showLogin('Your session ended: log in again.'); return; }
    main.replaceChildren(h('p', { class: 'err' }, 'Cannot load this page: ' + e.message));
  }
}

function connectEvents() {
  if (events) events.close();
  const dot = document.getElementById('live');
  events = new EventSource('/console/api/events');
  events.addEventListener('overview', (e) => {
    lastOverview = JSON.parse(e.data);
    dot.classList.add('on');
    if (current && current.onOverview) current.onOverview(lastOverview);
  });
  events.onerror = () => {
    dot.classList.remove('on');
    // The browser retries by itself; if the session ended, say so.
    api('session').then(s => { if (s.login_required && !s.logged_in) { events.close(); showLogin('Your session ended: log in again.'); } }).catch(() => {});
  };
}

function start() {
  renderWho();
  connectEvents();
  window.onhashchange = route;
  route();
}

(async function boot() {
  try {
    const s = await api('session');
    setSession(s);
    if (s.login_required && !s.logged_in) { showLogin(); return; }
    start();
  } catch (e) {
    toast('Cannot reach the gateway: ' + e.message, true);
  }
})();
