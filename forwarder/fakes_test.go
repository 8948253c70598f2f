package forwarder

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/shards"
)

// memSource is an in-memory Source: shards with records, closing, trimming.
type memSource struct {
	mu     sync.Mutex
	shards map[string]*memShard
	err    error // returned by Shards when set
}

type memShard struct {
	mu      sync.Mutex
	info    shards.ShardInfo
	recs    []shards.Record // recs[i].Seq == info.StartSeq + i
	trim    uint64          // first stored seq
	changed chan struct{}
}

func newMemSource(ids ...string) *memSource {
	s := &memSource{shards: map[string]*memShard{}}
	for _, id := range ids {
		s.add(shards.ShardInfo{ID: id, StartSeq: 1})
	}
	return s
}

func (s *memSource) add(info shards.ShardInfo) *memShard {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := &memShard{info: info, trim: info.StartSeq, changed: make(chan struct{})}
	s.shards[info.ID] = sh
	return sh
}

func (s *memSource) shard(id string) *memShard {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shards[id]
}

func (s *memSource) Shards() ([]shards.ShardInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []shards.ShardInfo
	for _, sh := range s.shards {
		sh.mu.Lock()
		out = append(out, sh.info)
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *memSource) Shard(id string) (ShardReader, error) {
	if sh := s.shard(id); sh != nil {
		return sh, nil
	}
	return nil, shards.ErrShardNotFound
}

// append adds records (Seq and Arrival assigned) and wakes readers.
func (sh *memShard) append(recs ...shards.Record) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, r := range recs {
		r.Seq = sh.info.StartSeq + uint64(len(sh.recs))
		if r.Arrival == 0 {
			r.Arrival = time.Now().UnixMilli()
		}
		sh.recs = append(sh.recs, r)
	}
	close(sh.changed)
	sh.changed = make(chan struct{})
}

func (sh *memShard) close() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.info.Closed = true
	sh.info.EndSeq = sh.info.StartSeq + uint64(len(sh.recs)) - 1
	close(sh.changed)
	sh.changed = make(chan struct{})
}

func (sh *memShard) trimTo(seq uint64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.trim = seq
}

func (sh *memShard) Read(from uint64, maxRecords, maxBytes int) ([]shards.Record, uint64, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if from < sh.trim {
		return nil, from, &shards.TrimmedError{Shard: sh.info.ID, Requested: from, TrimHorizon: sh.trim, Lost: sh.trim - from}
	}
	var out []shards.Record
	size := 0
	for i := int(from - sh.info.StartSeq); i < len(sh.recs) && len(out) < maxRecords; i++ {
		if len(out) > 0 && size+len(sh.recs[i].Data) > maxBytes {
			break
		}
		size += len(sh.recs[i].Data)
		out = append(out, sh.recs[i])
	}
	if len(out) > 0 {
		return out, out[len(out)-1].Seq + 1, nil
	}
	return out, from, nil
}

func (sh *memShard) RecordsIn(from, to uint64) (uint64, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var n uint64
	for _, r := range sh.recs {
		if r.Seq >= from && r.Seq < to && r.Seq >= sh.trim {
			n++
		}
	}
	return n, nil
}

func (sh *memShard) Changed() <-chan struct{} {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.changed
}

func (sh *memShard) TrimHorizon() uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return max(sh.trim, sh.info.StartSeq)
}

func (sh *memShard) Last() uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.info.StartSeq + uint64(len(sh.recs)) - 1
}

func (sh *memShard) ArrivalOf(seq uint64) (time.Time, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := int(seq - sh.info.StartSeq)
	if seq < sh.trim || i < 0 || i >= len(sh.recs) {
		return time.Time{}, false
	}
	return time.UnixMilli(sh.recs[i].Arrival), true
}

// memCkpt is an in-memory CheckpointStore.
type memCkpt struct {
	mu sync.Mutex
	m  map[string]map[string]uint64
}

func newMemCkpt() *memCkpt { return &memCkpt{m: map[string]map[string]uint64{}} }

func (c *memCkpt) Commit(stream, consumer, shardID string, seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := stream + "/" + consumer
	if c.m[k] == nil {
		c.m[k] = map[string]uint64{}
	}
	if prev, ok := c.m[k][shardID]; ok && seq < prev {
		return fmt.Errorf("checkpoint of %s went back from %d to %d", shardID, prev, seq)
	}
	c.m[k][shardID] = seq
	return nil
}

func (c *memCkpt) Get(stream, consumer string) (map[string]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]uint64{}
	for k, v := range c.m[stream+"/"+consumer] {
		out[k] = v
	}
	return out, nil
}

// fakeKinesis is a PutRecords endpoint that records what it stored and
// enforces the per-key rule across concurrent requests. decide picks each
// request's fate: a whole-request error, or per-entry error codes.
type fakeKinesis struct {
	t      testing.TB
	mu     sync.Mutex
	stored []stored
	busy   map[string]bool // keys in requests being processed
	calls  int
	delay  time.Duration
	decide func(call int, in *kinesis.PutRecordsInput) (codes []string, storeAnyway bool, err error)
}

type stored struct {
	key  string
	data []byte
}

func newFakeKinesis(t testing.TB) *fakeKinesis { return &fakeKinesis{t: t, busy: map[string]bool{}} }

func (k *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	k.mu.Lock()
	k.calls++
	call := k.calls
	if len(in.Records) > maxBatchRecords {
		k.t.Errorf("request with %d records", len(in.Records))
	}
	size := 0
	seen := map[string]bool{}
	for _, r := range in.Records {
		key := aws.ToString(r.PartitionKey)
		size += len(r.Data) + len(key)
		if len(r.Data)+len(key) > maxRecordBytes {
			k.t.Errorf("entry of %d bytes", len(r.Data)+len(key))
		}
		if seen[key] {
			k.t.Errorf("key %q twice in one request", key)
		}
		if k.busy[key] {
			k.t.Errorf("key %q in two requests at once", key)
		}
		seen[key] = true
	}
	if size > maxBatchBytes {
		k.t.Errorf("request of %d bytes", size)
	}
	for key := range seen {
		k.busy[key] = true
	}
	decide := k.decide
	delay := k.delay
	k.mu.Unlock()

	var codes []string
	var storeAnyway bool
	var err error
	if decide != nil {
		codes, storeAnyway, err = decide(call, in)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for key := range seen {
		delete(k.busy, key)
	}
	if err != nil {
		if storeAnyway {
			for _, r := range in.Records {
				k.stored = append(k.stored, stored{aws.ToString(r.PartitionKey), r.Data})
			}
		}
		return nil, err
	}
	out := &kinesis.PutRecordsOutput{}
	for i, r := range in.Records {
		code := ""
		if i < len(codes) {
			code = codes[i]
		}
		if code != "" {
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected")})
			continue
		}
		k.stored = append(k.stored, stored{aws.ToString(r.PartitionKey), r.Data})
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(fmt.Sprint(len(k.stored)))})
	}
	return out, nil
}

func (k *fakeKinesis) callCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

func (k *fakeKinesis) snapshot() []stored {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]stored(nil), k.stored...)
}

func (k *fakeKinesis) setDecide(fn func(call int, in *kinesis.PutRecordsInput) ([]string, bool, error)) {
	k.mu.Lock()
	k.decide = fn
	k.mu.Unlock()
}

type atomicBool struct{ v atomic.Bool }

func (b *atomicBool) Load() bool   { return b.v.Load() }
func (b *atomicBool) Store(v bool) { b.v.Store(v) }
