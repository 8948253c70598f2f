import { h, api, confirmAction } from './dom.js';

const operatorPaused = 'paused by an operator';

export function forwarderActions(f) {
  const held = f.phase === 'paused' && (f.reason || '').startsWith(operatorPaused);
  if (held) {
    return h('button', { type: 'button', class: 'act-resume', onclick: () => confirmAction('Resume forwarder',
      `Resume forwarding ${f.stream} to ${f.target_stream}? It sends its backlog of ${f.lag_records} records.`,
      () => api('actions/forwarder', { target_stream: f.target_stream, pause: false })) }, 'Resume');
  }
  return h('button', { type: 'button', class: 'act-pause', onclick: () => confirmAction('Pause forwarder',
    `Pause forwarding ${f.stream} to ${f.target_stream}? Records keep arriving and wait locally; nothing is lost. A restart of the gateway resumes it.`,
    () => api('actions/forwarder', { target_stream: f.target_stream, pause: true })) }, 'Pause');
}

export function checkpointActions(stream, c, done) {
  if (c.forwarder) return '';
  return h('span', {},
    h('button', { type: 'button', onclick: () => confirmAction('Reset checkpoint',
      `Move consumer ${c.name} of ${stream} back to the oldest record kept? It will process everything again.`,
      async () => { await api('actions/checkpoint', { stream, consumer: c.name, to: 'trim_horizon' }); done(); }) }, 'To oldest'), ' ',
    h('button', { type: 'button', onclick: () => confirmAction('Reset checkpoint',
      `Move consumer ${c.name} of ${stream} to the newest record? It skips its backlog of ${c.lag_records} records.`,
      async () => { await api('actions/checkpoint', { stream, consumer: c.name, to: 'latest' }); done(); }) }, 'To newest'));
}

export function shardActions(stream, s, adjacent, done) {
  if (!s.open) return '';
  const split = h('button', { type: 'button', onclick: () => confirmAction('Split shard',
    `Split ${s.id} of ${stream} in two at the middle of its hash range? The shard closes and two children take its keys.`,
    async () => { await api('actions/split', { stream, shard: s.id }); done(); }) }, 'Split');
  if (!adjacent) return split;
  return h('span', {}, split, ' ', h('button', { type: 'button', onclick: () => confirmAction('Merge shards',
    `Merge ${s.id} with its neighbour ${adjacent.id} in ${stream}? Both close and one child takes their keys.`,
    async () => { await api('actions/merge', { stream, shard: s.id, adjacent: adjacent.id }); done(); }) }, 'Merge with ' + adjacent.id));
}
