import { h, api, time, toast } from './dom.js';

const maxShown = 200;

function recordCard(r) {
  return h('div', { class: 'record', 'data-seq': r.seq },
    h('div', { class: 'meta' },
      h('span', {}, h('b', {}, r.shard), ' #', r.seq), h('span', {}, time(r.arrival)),
      r.topic ? h('span', {}, 'topic ', h('b', {}, r.topic)) : '', h('span', {}, 'key ', h('b', {}, r.key)),
      r.client_id ? h('span', {}, 'client ', h('b', {}, r.client_id)) : '', h('span', {}, 'QoS ' + r.qos),
      h('span', { class: 'badge kind-' + r.payload.kind }, r.payload.kind), h('span', {}, r.payload.size + ' B' + (r.payload.truncated ? ' (first 16 KiB shown)' : ''))),
    h('pre', { class: 'payload' }, r.payload.text));
}

export async function recordsPage(main) {
  const { streams } = await api('streams');
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const stream = h('select', { id: 'rec-stream' }, streams.map(s => h('option', { value: s.name }, s.name)));
  if (params.get('stream')) stream.value = params.get('stream');
  const shard = h('select', { id: 'rec-shard' });
  const from = h('select', { id: 'rec-from' },
    h('option', { value: 'latest' }, 'Latest'), h('option', { value: 'trim_horizon' }, 'Oldest kept'),
    h('option', { value: 'seq' }, 'From sequence number'), h('option', { value: 'time' }, 'From time'));
  const seq = h('input', { id: 'rec-seq', type: 'number', min: 0, placeholder: 'seq', hidden: true });
  const at = h('input', { id: 'rec-time', type: 'datetime-local', hidden: true });
  const live = h('input', { id: 'rec-live', type: 'checkbox', checked: true });
  const list = h('div', { id: 'records' });
  const status = h('span', { class: 'muted', id: 'rec-status' });
  let es = null;

  function fillShards() {
    const st = streams.find(s => s.name === stream.value);
    shard.replaceChildren(h('option', { value: '' }, 'All shards'),
      ...(st ? st.shards.map(s => h('option', { value: s.id }, s.id + (s.open ? '' : ' (closed)'))) : []));
  }
  function query() {
    const p = new URLSearchParams({ stream: stream.value, from: from.value, limit: 50 });
    if (shard.value) p.set('shard', shard.value);
    if (from.value === 'seq') p.set('seq', seq.value || '0');
    if (from.value === 'time') p.set('time', String(at.value ? new Date(at.value).getTime() : Date.now()));
    return p.toString();
  }
  function add(recs) {
    for (const r of recs) list.prepend(recordCard(r));
    while (list.children.length > maxShown) list.lastChild.remove();
  }
  function stop() { if (es) { es.close(); es = null; } }
  async function load() {
    stop();
    list.replaceChildren();
    if (!stream.value) { status.textContent = 'No streams.'; return; }
    if (from.value === 'seq' && !shard.value) { toast('Choose a shard to read from a sequence number', true); return; }
    if (live.checked) {
      es = new EventSource('/console/api/tail?' + query());
      status.textContent = 'live';
      es.addEventListener('records', (e) => {
        const d = JSON.parse(e.data);
        if (d.skipped) status.textContent = `live (skipped ${d.skipped} records to keep up)`;
        add(d.records);
      });
      es.addEventListener('error', (e) => { if (e.data) toast(JSON.parse(e.data).error, true); });
    } else {
      const d = await api('records?' + query());
      add(d.records);
      status.textContent = d.records.length + ' records';
    }
  }
  from.onchange = () => { seq.hidden = from.value !== 'seq'; at.hidden = from.value !== 'time'; };
  stream.onchange = () => { fillShards(); load(); };
  fillShards();
  if (params.get('shard')) shard.value = params.get('shard');
  main.replaceChildren(h('h1', {}, 'Record browser'),
    h('div', { class: 'controls' }, stream, shard, from, seq, at,
      h('label', {}, live, ' Live'), h('button', { type: 'button', class: 'primary', id: 'rec-go', onclick: () => load() }, 'Show'), status),
    list);
  await load();
  return { close: stop };
}
