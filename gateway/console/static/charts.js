// Live charts over the sample ring: uPlot (vendor/uplot, a classic
// script that defines window.uPlot).

const charts = [];

export const series = [
  { key: 'msgs', title: 'MQTT publishes /s', label: 'msgs/s', color: '#1f6feb' },
  { key: 'bytes', title: 'Log bytes /s', label: 'bytes/s', color: '#8250df', bytes: true },
  { key: 'refused', title: 'Refused /s', label: 'refused/s', color: '#c62828' },
  { key: 'conns', title: 'MQTT connections', label: 'connections', color: '#2e7d32' },
  { key: 'disk_used', title: 'Disk used by streams', label: 'bytes', color: '#b26a00', bytes: true },
  { key: 'fwd_lag', title: 'Forwarder lag (records)', label: 'records', color: '#0a7e8c' },
];

function fmtBytes(v) {
  const u = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (Math.round(v * 10) / 10) + u[i];
}

// describe says in words what the canvas shows, for screen readers
// (and the browser test).
function describe(c) {
  const n = c.data[0].length;
  const last = n ? c.data[1][n - 1] : null;
  c.box.dataset.points = n;
  c.box.setAttribute('role', 'img');
  c.box.setAttribute('aria-label', `${c.s.title}, last hour: ${n} points` + (n ? `, latest ${Math.round(last * 10) / 10}` : ''));
}

function width(el) { return Math.max(200, el.clientWidth - 8); }

// mount draws one chart per series into parent from samples.
export function mountCharts(parent, samples) {
  destroyCharts();
  for (const s of series) {
    const box = document.createElement('div');
    box.className = 'chart';
    box.dataset.series = s.key;
    const title = document.createElement('h3');
    title.textContent = s.title;
    box.append(title);
    parent.append(box);
    const data = [samples.map(p => p.t / 1000), samples.map(p => p[s.key])];
    const opts = {
      width: width(box), height: 150, legend: { show: false }, cursor: { show: true, drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.1, 1)] } },
      axes: [{ stroke: '#677080', grid: { stroke: '#eceef1' } },
        { stroke: '#677080', grid: { stroke: '#eceef1' }, size: 50, values: (u, vals) => vals.map(v => s.bytes ? fmtBytes(v) : v) }],
      series: [{}, { label: s.label, stroke: s.color, width: 1.5, fill: s.color + '22', points: { show: false } }],
    };
    const u = new uPlot(opts, data, box);
    const c = { u, s, box, data };
    describe(c);
    charts.push(c);
  }
}

export function pushSample(p) {
  for (const c of charts) {
    c.data[0].push(p.t / 1000);
    c.data[1].push(p[c.s.key]);
    // The ring holds an hour; so does the page.
    const cut = p.t / 1000 - 3600;
    while (c.data[0].length && c.data[0][0] < cut) { c.data[0].shift(); c.data[1].shift(); }
    c.u.setData(c.data);
    describe(c);
  }
}

export function destroyCharts() {
  while (charts.length) charts.pop().u.destroy();
}

let resizeTimer;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { for (const c of charts) c.u.setSize({ width: width(c.box), height: 150 }); }, 150);
});
