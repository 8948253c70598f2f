// Package consumer reads a weir stream from a local application through the
// gateway's Kinesis-compatible API, with checkpoints kept by the gateway.
//
//	c, err := consumer.New(consumer.Config{
//		Endpoint: "http://127.0.0.1:4588", Stream: "telemetry", Name: "dashboard",
//		CheckpointEvery: 1000, CheckpointInterval: 5 * time.Second,
//	})
//	err = c.Run(ctx, func(ctx context.Context, r consumer.Record) error {
//		return show(r.Key, r.Data)
//	})
//
// What Run guarantees:
//   - Shards are discovered with ListShards. A shard is read only once all
//     its parents have been read to their end (NextShardIterator null),
//     so a partition key's records arrive in order across splits and
//     merges; when a shard ends, the shard list is read again and its
//     children start. Unrelated shards are read in parallel.
//   - Records of a shard are handed to the handler one at a time, in
//     sequence order. A record counts as delivered when the handler
//     returns nil.
//   - The position committed for a shard is its last delivered record:
//     every CheckpointEvery records, every CheckpointInterval, at the end
//     of a shard, on Checkpoint, and when Run returns (by ctx, ErrStop or a
//     handler error). After a restart of the application or of the
//     gateway, reading resumes after the committed position: nothing is
//     skipped, and only records delivered after the last commit (at most
//     one interval's or CheckpointEvery's worth per shard) are delivered
//     again. Commits are fsynced by the gateway before it answers.
//   - Reads use the gateway's long-poll (WeirGateway_20261125.GetRecords
//     with WaitMillis), which returns within milliseconds of a commit, so
//     there is no poll interval to tune.
//   - Gateway outages, restarts and throttling are retried forever with
//     backoff (50 ms doubling to 2 s). An expired or foreign iterator is
//     replaced by a new one at the same position. A deleted stream or a
//     handler error ends Run with an error.
//   - A checkpoint that retention overtook (status TRIMMED) is logged with
//     the number of records lost, and the shard continues at its trim
//     horizon; a gap found while reading is logged the same way.
//
// Modes for tools (weir read uses them):
//   - Ephemeral: no registration and no checkpoints; every Run starts at
//     From, and nothing is left behind on the gateway.
//   - From may be "trim_horizon", "latest" or a sequence number N: in
//     every shard, start at the first record numbered N or more, clamped
//     to what the shard holds when Run starts (see Config.From). With
//     IgnoreCheckpoints a registered consumer starts at From despite its
//     checkpoints, and commits those start positions before reading.
//   - StopAtEnd: Run returns nil once every shard has been read up to the
//     last record it held when Run started; the positions come from
//     WeirGateway_20261125.DescribeGateway. Sequential (with StopAtEnd)
//     reads one shard at a time in shard-id order, parents first, so
//     output comes shard by shard.
//
// The calls go through gateway/apiclient rather than aws-sdk-go-v2's
// Kinesis client: four of the operations are weir's own, and the SDK's
// retry policy is not the consumer's. Requests are signed (SigV4) with the
// standard AWS credential chain (Config.Profile, else AWS_PROFILE or the
// environment's keys; unsigned when there are none, as a gateway without
// api.credentials_file accepts), and an https gateway's certificate is
// verified with Config.CAFile or AWS_CA_BUNDLE.
package consumer
