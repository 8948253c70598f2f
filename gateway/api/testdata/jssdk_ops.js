// Runs every Kinesis operation the gateway serves through
// @aws-sdk/client-kinesis with its default request handler (no
// requestHandler option: NodeHttp2Handler, so HTTP/2 — h2c with prior
// knowledge for http://, ALPN h2 for https://) and prints, as JSON, what
// each returned. TestJSSDKEveryOperation checks the answers (and provides
// the key file alias/edge for the encryption calls).
//
//   node jssdk_ops.js <endpoint> <access key id> <secret>
const k = require('@aws-sdk/client-kinesis');
const [endpoint, accessKeyId, secretAccessKey] = process.argv.slice(2);
const client = () => new k.KinesisClient({ endpoint, region: 'eu-west-1', maxAttempts: 1,
  credentials: { accessKeyId, secretAccessKey } });
const kc = client();
const S = 'js';
const out = { handler: kc.config.requestHandler.constructor.name, ops: {} };
const call = async (name, input, c = kc) => {
  try {
    const r = await c.send(new k[name + 'Command'](input));
    out.ops[name] = out.ops[name] || 'ok';
    return r;
  } catch (e) {
    out.ops[name] = 'error ' + e.name + ': ' + e.message;
    throw e;
  }
};
const text = (rs) => rs.map((r) => Buffer.from(r.Data).toString()).join(',');

// Reads a subscription until it holds n records.
async function subscribe(arn, shard, n) {
  const r = await call('SubscribeToShard', { ConsumerARN: arn, ShardId: shard, StartingPosition: { Type: 'TRIM_HORIZON' } }, client());
  const recs = [];
  let cont;
  for await (const ev of r.EventStream) {
    if (!ev.SubscribeToShardEvent) continue;
    recs.push(...ev.SubscribeToShardEvent.Records);
    cont = ev.SubscribeToShardEvent.ContinuationSequenceNumber;
    if (recs.length >= n) break;
  }
  return { data: text(recs), cont, last: recs.length ? recs[recs.length - 1].SequenceNumber : '' };
}

(async () => {
  await call('CreateStream', { StreamName: S, ShardCount: 2 });
  out.streams = (await call('ListStreams', {})).StreamNames;
  const d = await call('DescribeStream', { StreamName: S });
  const arn = d.StreamDescription.StreamARN;
  const shard0 = d.StreamDescription.Shards[0].ShardId;
  out.summaryOpen = (await call('DescribeStreamSummary', { StreamARN: arn })).StreamDescriptionSummary.OpenShardCount;
  out.listShards = (await call('ListShards', { StreamName: S })).Shards.length;
  const consumer = (await call('RegisterStreamConsumer', { StreamARN: arn, ConsumerName: 'efo' })).Consumer.ConsumerARN;
  out.consumerStatus = (await call('DescribeStreamConsumer', { ConsumerARN: consumer })).ConsumerDescription.ConsumerStatus;
  out.consumers = (await call('ListStreamConsumers', { StreamARN: arn })).Consumers.map((c) => c.ConsumerName);

  // A subscription waiting before the records are written.
  const sub = subscribe(consumer, shard0, 4);
  await new Promise((r) => setTimeout(r, 300));
  await call('PutRecord', { StreamName: S, PartitionKey: 'k', ExplicitHashKey: '0', Data: Buffer.from('a') });
  const pr = await call('PutRecords', { StreamName: S, Records: ['b', 'c', 'd'].map((x) => ({ PartitionKey: 'k', ExplicitHashKey: '0', Data: Buffer.from(x) })) });
  out.putFailed = pr.FailedRecordCount;
  out.subscribed = await sub;
  // One subscription per consumer and shard: a second is refused.
  const shard1 = d.StreamDescription.Shards[1];
  const held = await client().send(new k.SubscribeToShardCommand({ ConsumerARN: consumer, ShardId: shard1.ShardId, StartingPosition: { Type: 'LATEST' } }));
  try {
    await client().send(new k.SubscribeToShardCommand({ ConsumerARN: consumer, ShardId: shard1.ShardId, StartingPosition: { Type: 'LATEST' } }));
    out.secondSubscription = 'accepted';
  } catch (e) { out.secondSubscription = e.name; }
  void held;

  const it = (await call('GetShardIterator', { StreamName: S, ShardId: shard0, ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
  out.getRecords = text((await call('GetRecords', { ShardIterator: it })).Records);
  await call('IncreaseStreamRetentionPeriod', { StreamName: S, RetentionPeriodHours: 48 });
  await call('DecreaseStreamRetentionPeriod', { StreamName: S, RetentionPeriodHours: 24 });
  const mid = (BigInt(shard1.HashKeyRange.StartingHashKey) + BigInt(shard1.HashKeyRange.EndingHashKey)) / 2n;
  await call('SplitShard', { StreamName: S, ShardToSplit: shard1.ShardId, NewStartingHashKey: mid.toString() });
  const open = (await call('ListShards', { StreamName: S, ShardFilter: { Type: 'AT_LATEST' } })).Shards.map((s) => s.ShardId).filter((id) => id !== shard0);
  await call('MergeShards', { StreamName: S, ShardToMerge: open[0], AdjacentShardToMerge: open[1] });
  out.updated = (await call('UpdateShardCount', { StreamName: S, TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })).TargetShardCount;
  await call('AddTagsToStream', { StreamName: S, Tags: { site: 'plant-1' } });
  out.tags = (await call('ListTagsForStream', { StreamName: S })).Tags.map((t) => t.Key + '=' + t.Value).join(',');
  await call('RemoveTagsFromStream', { StreamName: S, TagKeys: ['site'] });
  out.shardLimit = (await call('DescribeLimits', {})).ShardLimit;
  out.monitoring = (await call('EnableEnhancedMonitoring', { StreamName: S, ShardLevelMetrics: ['IncomingBytes'] })).DesiredShardLevelMetrics.join(',');
  await call('DisableEnhancedMonitoring', { StreamName: S, ShardLevelMetrics: ['ALL'] });
  await call('UpdateStreamMode', { StreamARN: arn, StreamModeDetails: { StreamMode: 'ON_DEMAND' } });
  out.mode = (await call('DescribeStreamSummary', { StreamARN: arn })).StreamDescriptionSummary.StreamModeDetails.StreamMode;
  await call('StartStreamEncryption', { StreamName: S, EncryptionType: 'KMS', KeyId: 'alias/edge' });
  out.encryption = (await call('PutRecord', { StreamName: S, PartitionKey: 'k', Data: Buffer.from('e') })).EncryptionType;
  await call('StopStreamEncryption', { StreamName: S, EncryptionType: 'KMS', KeyId: 'alias/edge' });
  try {
    await kc.send(new k.DescribeStreamCommand({ StreamName: 'no-such-stream' }));
    out.missingStream = 'found';
  } catch (e) { out.missingStream = e.name; }
  await call('DeregisterStreamConsumer', { ConsumerARN: consumer });
  await call('DeleteStream', { StreamName: S });
  process.stdout.write(JSON.stringify(out));
  process.exit(0); // subscriptions left open above would keep node alive
})().catch((e) => { process.stdout.write(JSON.stringify({ ...out, fatal: e.name + ': ' + e.message })); process.exit(0); });
