package forwarder

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/shards"
)

// s3Sink archives runs of one local shard as objects (s3sink.Writer).
// The engine runs it in shard-run mode: an item is a run of consecutive
// records of one shard, cut at max_object_bytes or max_object_age, one
// run per shard in flight, a failed run rewritten as it was; the
// watermark moves a whole object at a time, so a run retried after a
// restart starts at the same record and s3sink names it the same: no
// object holds a record another already holds. Each request body (an
// object, or a part of a large one) waits for its bytes on a meter
// (s3sink.Options.Wait), 16 KiB at a time, so a large object does not
// hold up a higher-priority sink on the shared uplink. The meter is not
// wrapped around the HTTP client: the Writer keeps its own, which the
// SDK needs for AWS_CA_BUNDLE and which bounds dials and responses.
type s3Sink struct {
	cfg Config
	w   *s3sink.Writer
	m   *meter
	lim limits
}

func newS3Sink(cfg Config, opts Options, log zerolog.Logger) (sink, error) {
	sc := cfg.S3.WithDefaults()
	m := newMeter(cfg, opts.Uplink)
	w, err := s3sink.New(context.Background(), sc, s3sink.Options{
		Gateway: opts.GatewayID, Logger: log, HTTPClient: opts.HTTPClient,
		LoadOptions: opts.LoadOptions, Wait: m.waitBytes,
	})
	if err != nil {
		m.close()
		return nil, err
	}
	objBytes := int(sc.MaxObjectBytes.Bytes())
	return &s3Sink{cfg: cfg, w: w, m: m, lim: limits{
		maxItems: cfg.MaxInFlight, maxRecords: 1 << 30, maxBatchBytes: cfg.MaxInFlight * objBytes, maxItemBytes: objBytes,
		multi: true, byShard: true, keepRecords: true, selfMetered: true,
		linger: sc.MaxObjectAge.D(), timeout: time.Hour,
	}}, nil
}

func (s *s3Sink) limits() limits { return s.lim }

// encode keeps the data only for sizing: the Writer encodes the records.
func (s *s3Sink) encode(_ string, r *shards.Record) ([]byte, error) { return r.Data, nil }

// send writes each item as one object, concurrently; each succeeds or
// fails on its own.
func (s *s3Sink) send(ctx context.Context, b *batch) (sendOutcome, error) {
	o := sendOutcome{res: make([]entryResult, len(b.items))}
	errs := make([]error, len(b.items))
	var wg sync.WaitGroup
	for i, it := range b.items {
		recs := make([]*shards.Record, len(it.entries))
		for j, e := range it.entries {
			recs[j] = e.rec
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.w.Put(ctx, s3sink.Object{Stream: s.cfg.Stream, Shard: it.entries[0].lane.id, Records: recs})
		}()
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		o.res[i] = entryFailed
		fl := s.classify(err)
		o.lastErr = fl.code + ": " + fl.msg
		if fl.kind == permanent && o.perm == nil {
			o.perm = &fl
		}
	}
	if failed == len(b.items) {
		return sendOutcome{}, errors.Join(errs...)
	}
	return o, nil
}

// classify names a failure after the store's error code when there is
// one (the state then reads "paused: NoSuchBucket: ..."), else after
// Classify's reason.
func (s *s3Sink) classify(err error) failure {
	perm, reason := s3sink.Classify(err)
	code := reason
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		code = ae.ErrorCode()
	} else if perm {
		code = "S3"
	}
	if perm {
		return failure{kind: permanent, code: code, msg: err.Error(), fix: reason}
	}
	return failure{kind: transient, code: code, msg: err.Error()}
}

func (s *s3Sink) close() {
	s.w.Close()
	s.m.close()
}
