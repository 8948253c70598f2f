// A SubscribeToShard consumer on @aws-sdk/client-kinesis with its default
// request handler (NodeHttp2Handler: h2c) that lives through a gateway
// restart, as TestJSSDKResumeAcrossRestart drives it:
//
//   node jssdk_resume.js <endpoint> <access key id> <secret> <consumer ARN> <shard id> <n>
//
// It subscribes at TRIM_HORIZON and prints {"first": records, "cont": the
// last ContinuationSequenceNumber} once it has n records; it keeps reading
// until the gateway ends the stream (the restart) and prints {"ended": how}.
// On the stdin line "resume" it subscribes again, AFTER_SEQUENCE_NUMBER its
// last ContinuationSequenceNumber, with the same client, prints
// {"resubscribed": true}, and on the line "read <m>" reads m records and
// then anything more for 300 ms, and prints {"second": records, "cont"}.
// Records print as their data, comma-separated.
const k = require('@aws-sdk/client-kinesis');
const readline = require('readline');
const [endpoint, accessKeyId, secretAccessKey, ConsumerARN, ShardId] = process.argv.slice(2);
const n = Number(process.argv[7]);
const kc = new k.KinesisClient({ endpoint, region: 'eu-west-1', credentials: { accessKeyId, secretAccessKey } });
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const text = (rs) => rs.map((r) => Buffer.from(r.Data).toString()).join(',');

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const line = async () => (await lines.next()).value;

// events yields a subscription's SubscribeToShardEvents, checking that each
// continues where its last record left off.
async function* events(StartingPosition) {
  const r = await kc.send(new k.SubscribeToShardCommand({ ConsumerARN, ShardId, StartingPosition }));
  for await (const ev of r.EventStream) {
    const e = ev.SubscribeToShardEvent;
    if (!e) throw new Error('unexpected event ' + Object.keys(ev));
    const last = e.Records.length ? e.Records[e.Records.length - 1].SequenceNumber : e.ContinuationSequenceNumber;
    if (e.ContinuationSequenceNumber !== last) throw new Error(`ContinuationSequenceNumber ${e.ContinuationSequenceNumber}, last record ${last}`);
    yield e;
  }
}

(async () => {
  let recs = [];
  let cont;
  let ended = 'end of stream';
  try {
    for await (const e of events({ Type: 'TRIM_HORIZON' })) {
      const had = recs.length;
      recs.push(...e.Records);
      cont = e.ContinuationSequenceNumber;
      if (had < n && recs.length >= n) print({ first: text(recs), cont });
    }
  } catch (e) {
    ended = e.name + ': ' + e.message;
  }
  if (recs.length < n) throw new Error(`the stream ended after ${recs.length} of ${n} records: ${ended}`);
  print({ ended, extra: text(recs.slice(n)) });

  if ((await line()) !== 'resume') throw new Error('expected "resume"');
  const second = events({ Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: cont });
  const first = second.next(); // sends the request; its first event follows
  recs = [];
  const take = (e) => { recs.push(...e.Records); cont = e.ContinuationSequenceNumber; };
  let r = await first;
  if (r.done) throw new Error('the resumed stream ended at once');
  take(r.value);
  print({ resubscribed: true });
  const m = Number((await line()).replace(/^read /, ''));
  while (recs.length < m) {
    r = await second.next();
    if (r.done) throw new Error(`the resumed stream ended after ${recs.length} of ${m} records`);
    take(r.value);
  }
  // Anything after the m records is a duplicate: wait for it a moment.
  const more = await Promise.race([second.next(), new Promise((ok) => setTimeout(() => ok(null), 300))]);
  if (more && !more.done) take(more.value);
  print({ second: text(recs), cont });
  process.exit(0);
})().catch((e) => {
  print({ fatal: e.name + ': ' + e.message });
  process.exit(1);
});
