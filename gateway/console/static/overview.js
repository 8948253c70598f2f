import { h, api, bytes, num, dur, table, badge } from './dom.js';
import { mountCharts, pushSample } from './charts.js';
import { forwarderActions } from './actions.js';

function tile(id, label) {
  return h('div', { class: 'tile' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, '–'));
}

export async function overviewPage(main, ctx) {
  const hist = await api('history');
  const tiles = h('div', { class: 'tiles' },
    tile('t-msgs', 'Publishes /s'), tile('t-bytes', 'Log bytes /s'), tile('t-refused', 'Refused /s'),
    tile('t-conns', 'Connections'), tile('t-disk', 'Disk used / free'), tile('t-horizon', 'Oldest record kept'),
    tile('t-fwd', 'Forwarder lag'));
  const charts = h('div', { class: 'charts', id: 'charts' });
  const refusals = h('div', { id: 'refusals' });
  const fwds = h('div', { id: 'forwarders' });
  main.replaceChildren(h('h1', {}, 'Overview'), tiles, charts,
    h('div', { class: 'card' }, h('h2', {}, 'Refusals by reason'), refusals),
    h('div', { class: 'card' }, h('h2', {}, 'Forwarders'), fwds));
  mountCharts(charts, hist.samples);
  let first = true;
  const set = (id, v) => { document.getElementById(id).textContent = v; };
  return {
    onOverview(o) {
      const s = o.sample;
      set('t-msgs', num(s.msgs, 1));
      set('t-bytes', bytes(s.bytes) + '/s');
      set('t-refused', num(s.refused, 1));
      set('t-conns', num(s.conns));
      set('t-disk', bytes(s.disk_used) + ' / ' + bytes(s.disk_free));
      set('t-horizon', o.retention_horizon_s ? dur(o.retention_horizon_s) : '–');
      set('t-fwd', (o.forwarders || []).length ? num(s.fwd_lag) + ' rec · ' + dur(s.fwd_lag_s) : 'none');
      if (!first || !hist.samples.length || hist.samples[hist.samples.length - 1].t < s.t) pushSample(s);
      first = false;
      const rows = Object.entries(o.ingest.refused).map(([reason, n]) => ({ reason, n, kind: 'publish' }))
        .concat(Object.entries(o.ingest.login_failures).map(([reason, n]) => ({ reason, n, kind: 'login' })))
        .concat(Object.entries(o.ingest.limits || {}).map(([reason, n]) => ({ reason, n, kind: 'limit' })));
      refusals.replaceChildren(table([
        { label: 'Kind', get: r => r.kind }, { label: 'Reason', get: r => r.reason },
        { label: 'Count', num: true, get: r => num(r.n) }], rows.filter(r => r.n > 0)));
      fwds.replaceChildren(forwarderTable(o.forwarders || [], ctx.admin));
    },
  };
}

export function forwarderTable(list, admin) {
  return table([
    { label: 'Stream → target', get: f => f.stream + ' → ' + f.target_stream },
    { label: 'State', get: f => h('span', { class: 'fwd-state', 'data-target': f.target_stream }, badge(f.phase), f.reason ? ' ' + f.reason : '') },
    { label: 'Lag', num: true, get: f => num(f.lag_records) + ' rec' },
    { label: 'Lag bytes', num: true, get: f => bytes(f.lag_bytes) },
    { label: 'Oldest', num: true, get: f => dur(f.lag_seconds) },
    { label: 'Sent', num: true, get: f => num(f.sent) },
    { label: 'Last error', get: f => f.last_error || '' },
    { label: '', get: f => admin ? forwarderActions(f) : '' },
  ], list);
}
