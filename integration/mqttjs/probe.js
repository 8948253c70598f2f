// probe.js: one MQTT.js 5 client session, driven by a JSON plan, that
// prints what the broker answered as one JSON object on stdout. The
// security tests (integration/security_test.go) run it as a second real
// client beside mosquitto_pub/sub, so that every refusal code is seen by a
// client library the way an application would see it.
//
//   node probe.js '{"url":"mqtts://127.0.0.1:8883","version":5,"clientId":"d1",
//                   "username":"d1","password":"s","ca":"ca.crt","cert":"d1.crt","key":"d1.key",
//                   "steps":[{"sub":"devices/#","qos":1},{"pub":"devices/d1/t","payload":"x","qos":1}],
//                   "collectMs":300}'
//
// Output: {"connected":bool, "connack":{"code":N}|null, "error":{"code":N|string,"message":s}|null,
//          "subacks":[[N,...],...], "pubacks":[{"topic":s,"code":N|null}], "messages":[{"topic":s,"payload":s,"retain":bool}],
//          "disconnect":{"code":N}|null, "closed":bool}
// A publish the broker never answered (a 3.1.1 refusal closes the
// connection instead) has code null. The steps run one at a time, each
// waiting for its acknowledgement, the connection's end, or stepMs.
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const plan = JSON.parse(process.argv[2]);
const out = {
  connected: false, connack: null, error: null, subacks: [], pubacks: [],
  messages: [], disconnect: null, closed: false,
};
const stepMs = plan.stepMs || 3000;

const opts = {
  protocolVersion: plan.version || 5,
  clientId: plan.clientId,
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: plan.connectMs || 5000,
  rejectUnauthorized: true,
};
if (plan.username !== undefined) opts.username = plan.username;
if (plan.password !== undefined) opts.password = plan.password;
if (plan.ca) opts.ca = fs.readFileSync(plan.ca);
if (plan.cert) opts.cert = fs.readFileSync(plan.cert);
if (plan.key) opts.key = fs.readFileSync(plan.key);

// waiters get every packet and the close; the first that returns true is done.
let waiter = null;
const client = mqtt.connect(plan.url, opts);
client.on('packetreceive', (p) => {
  switch (p.cmd) {
    case 'connack':
      out.connack = { code: opts.protocolVersion === 5 ? (p.reasonCode || 0) : (p.returnCode || 0) };
      break;
    case 'suback':
      out.subacks.push(p.granted.map((g) => (typeof g === 'object' ? g.qos : g)));
      // A test running this probe in the background waits for this line
      // before it makes another client publish.
      process.stderr.write('suback\n');
      break;
    case 'publish':
      out.messages.push({ topic: p.topic, payload: p.payload.toString(), retain: !!p.retain });
      break;
    case 'disconnect':
      out.disconnect = { code: p.reasonCode || 0 };
      break;
  }
  if (waiter) waiter(p);
});
client.on('error', (e) => {
  if (!out.error) out.error = { code: e.code === undefined ? null : e.code, message: e.message };
});
client.on('close', () => {
  out.closed = true;
  if (waiter) waiter(null);
});

function until(match) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { waiter = null; resolve(null); }, stepMs);
    waiter = (p) => {
      if (p === null || match(p)) {
        clearTimeout(timer);
        waiter = null;
        resolve(p);
      }
    };
  });
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function main() {
  const first = await until((p) => p.cmd === 'connack');
  if (first && out.connack && out.connack.code === 0) {
    out.connected = true;
    for (const s of plan.steps || []) {
      if (out.closed) break;
      if (s.sub !== undefined) {
        const done = until((p) => p.cmd === 'suback');
        client.subscribe(s.sub, { qos: s.qos || 0 }, () => {});
        await done;
      } else if (s.pub !== undefined) {
        const qos = s.qos || 0;
        const rec = { topic: s.pub, code: null };
        out.pubacks.push(rec);
        if (qos === 0) {
          await new Promise((r) => client.publish(s.pub, s.payload || '', { qos: 0, retain: !!s.retain }, () => r()));
          rec.code = 0;
          continue;
        }
        const done = until((p) => p.cmd === (qos === 1 ? 'puback' : 'pubrec'));
        client.publish(s.pub, s.payload || '', { qos, retain: !!s.retain }, () => {});
        const p = await done;
        if (p) rec.code = p.reasonCode || 0;
      } else if (s.sleepMs) {
        await sleep(s.sleepMs);
      }
    }
    if (plan.collectMs && !out.closed) await sleep(plan.collectMs);
  } else if (!out.closed) {
    // Refused or no CONNACK: give the close (and the error event) a moment.
    await until(() => false);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  client.end(true);
  // MQTT.js may hold timers (keepalive, a failed TLS socket): leave now.
  setTimeout(() => process.exit(0), 50);
}

main().catch((e) => {
  out.error = out.error || { code: 'probe', message: String(e && e.stack || e) };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
});
