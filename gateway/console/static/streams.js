import { h, api, bytes, num, dur, table, badge, time } from './dom.js';
import { forwarderTable } from './overview.js';
import { checkpointActions, shardActions } from './actions.js';

function adjacentOf(s, shards) {
  const end = BigInt(s.end_hash);
  return shards.find(o => o.open && o.id !== s.id && BigInt(o.start_hash) === end + 1n);
}

export async function streamsPage(main, ctx) {
  const body = h('div', {});
  main.replaceChildren(h('h1', {}, 'Streams and shards'), body);
  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try { render((await api('streams')).streams || []); } finally { busy = false; }
  }
  function render(streams) {
    body.replaceChildren(...streams.map(st => {
      const open = st.shards.filter(s => s.open);
      const closed = st.shards.filter(s => !s.open);
      return h('section', { class: 'card stream', 'data-stream': st.name },
        h('h2', {}, st.name),
        h('p', { class: 'muted' }, `${open.length} open shards · ${bytes(st.bytes)} on disk · retention ${st.retention}` +
          (st.max_bytes ? ` · max ${bytes(st.max_bytes)}` : '') +
          (st.rate_records_per_sec ? ` · limit ${num(st.rate_records_per_sec)} rec/s per shard` : ' · no rate limit')),
        table([
          { label: 'Shard', get: s => s.id },
          { label: 'State', get: s => badge(s.open ? 'open' : 'closed') },
          { label: 'Rate', num: true, get: s => num(s.rate, 1) + '/s' },
          { label: 'Headroom', num: true, get: s => s.headroom < 0 ? '∞' : Math.round(s.headroom * 100) + '%' },
          { label: 'First seq', num: true, get: s => num(s.first_seq) },
          { label: 'Last seq', num: true, get: s => num(s.last_seq) },
          { label: 'Records', num: true, get: s => num(s.records) },
          { label: 'Bytes', num: true, get: s => bytes(s.bytes) },
          { label: 'Oldest', num: true, get: s => s.records ? dur(s.retention_horizon_s) : '–' },
          { label: '', get: s => ctx.admin ? shardActions(st.name, s, adjacentOf(s, open), load) : '' },
        ], open),
        closed.length ? h('div', {}, h('h2', {}, 'Reshard history'), table([
          { label: 'Closed shard', get: s => s.id },
          { label: 'Parent', get: s => [s.parent, s.adjacent_parent].filter(Boolean).join(' + ') || '–' },
          { label: 'Closed at', get: s => time(s.closed_at) },
          { label: 'Records kept', num: true, get: s => num(s.records) },
        ], closed)) : '',
        h('h2', {}, 'Consumers'),
        table([
          { label: 'Consumer', get: c => c.name },
          { label: 'Lag', num: true, get: c => num(c.lag_records) + ' rec' },
          { label: 'Lag bytes', num: true, get: c => bytes(c.lag_bytes) },
          { label: 'Lag time', num: true, get: c => dur(c.lag_seconds) },
          { label: '', get: c => ctx.admin ? checkpointActions(st.name, c, load) : '' },
        ], st.consumers || []),
        h('h2', {}, 'Forwarders'),
        forwarderTable(st.forwarders || [], ctx.admin));
    }));
    if (!streams.length) body.replaceChildren(h('p', { class: 'muted' }, 'No streams this key may read.'));
  }
  await load();
  // Refreshed with each pushed sample, not on a timer of its own.
  return { onOverview: () => load().catch(() => {}) };
}
