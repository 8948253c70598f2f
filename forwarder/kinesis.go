package forwarder

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/shards"
)

// kinesisSink sends batches with PutRecords. Entries fail one by one
// (throttled entries pace their upstream shard), and with aggregation a
// key's consecutive records go as one KPL record.
type kinesisSink struct {
	cfg      Config
	client   PutRecordsAPI
	envelope envelopeFunc
	timeout  time.Duration
}

func newKinesisSink(cfg Config, opts Options) (*kinesisSink, error) {
	s := &kinesisSink{cfg: cfg, client: opts.Client, envelope: rawEnvelope, timeout: cfg.RequestTimeout.D()}
	if cfg.Envelope == EnvelopeJSON {
		s.envelope = jsonEnvelope(opts.GatewayID, cfg.Stream)
	}
	if s.client == nil {
		c, err := NewClient(context.Background(), cfg, opts.HTTPClient, opts.LoadOptions...)
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	return s, nil
}

func (s *kinesisSink) limits() limits { return defaultLimits(s.cfg.Aggregate) }

func (s *kinesisSink) encode(shard string, r *shards.Record) ([]byte, error) {
	payload, err := s.envelope(shard, r)
	if err == nil && len(payload)+len(r.Key) > maxRecordBytes {
		err = fmt.Errorf("%d bytes with its key after the %s envelope, Kinesis takes at most %d", len(payload)+len(r.Key), s.cfg.Envelope, maxRecordBytes)
	}
	return payload, err
}

func (s *kinesisSink) send(ctx context.Context, b *batch) (sendOutcome, error) {
	recs := make([]types.PutRecordsRequestEntry, len(b.items))
	for i, it := range b.items {
		recs[i] = types.PutRecordsRequestEntry{Data: it.data, PartitionKey: aws.String(it.ks.key)}
	}
	in := &kinesis.PutRecordsInput{StreamName: aws.String(s.cfg.TargetStream), Records: recs}
	out, err := s.client.PutRecords(ctx, in)
	if err != nil {
		return sendOutcome{}, err
	}
	if len(out.Records) != len(b.items) {
		return sendOutcome{}, fmt.Errorf("%w: %d entries for %d records", ErrBadResponse, len(out.Records), len(b.items))
	}
	o := sendOutcome{res: make([]entryResult, len(b.items))}
	for i, rec := range out.Records {
		code := aws.ToString(rec.ErrorCode)
		o.res[i] = entryKind(code)
		if code == "" {
			continue
		}
		o.lastErr = code + ": " + aws.ToString(rec.ErrorMessage)
		if fix, ok := permanentCodes[code]; ok && o.perm == nil {
			o.perm = &failure{kind: permanent, code: code, msg: aws.ToString(rec.ErrorMessage), fix: fix}
		}
	}
	return o, nil
}

func (s *kinesisSink) classify(err error) failure { return classify(err) }

func (s *kinesisSink) close() {}

func (s *kinesisSink) mapsShards() bool {
	_, ok := s.client.(ListShardsAPI)
	return ok
}

func (s *kinesisSink) upstreamShards(ctx context.Context) ([]upShard, error) {
	return listUpstream(ctx, s.client.(ListShardsAPI), s.cfg.TargetStream, s.timeout)
}
