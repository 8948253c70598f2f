package shards

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-gateway/weir/wal"
)

// Stream is a named set of shards dividing the hash space. Writes are
// routed by hash key to the open shard that owns it.
type Stream struct {
	store *Store
	name  string
	dir   string
	// log holds the records of every shard, each shard a lane of it
	// (wal/FORMAT.md, "Lanes"); start is its first index (streamMeta.LogStart).
	log   *wal.Log
	start uint64
	usage usage // disk accounting (usage.go)

	// segLast caches the arrival time of the last record of sealed
	// segments without one in their footer (version 1), by path:
	// retention asks on every pass and sealed segments never change.
	segMu   sync.Mutex
	segLast map[string]int64

	// reshardMu serialises shard-map changes (reshards, retention-driven
	// expiry) so that each one reads and writes a consistent map.
	reshardMu sync.Mutex
	// resharding counts splits, merges and UpdateShardCount calls in
	// progress, so that UpdateStreamMode can answer ResourceInUse.
	resharding atomic.Int32

	mu      sync.RWMutex // guards the fields below
	cfg     StreamConfig
	meta    streamMeta
	shards  map[string]*Shard
	open    []*Shard      // open shards ordered by StartHash
	mapCh   chan struct{} // closed when the shard map changes
	deleted bool

	enc atomic.Pointer[encryption] // nil = new records in plain text; set with meta
}

// Name returns the stream's name.
func (st *Stream) Name() string { return st.name }

// Config returns the stream's effective configuration.
func (st *Stream) Config() StreamConfig {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.cfg
}

// Created is when the stream was first created.
func (st *Stream) Created() time.Time {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.meta.Created
}

// Retention is how long records are kept.
func (st *Stream) Retention() time.Duration { return st.Config().Retention.D() }

// Shards lists every shard not yet expired, ordered by id, so parents come
// before their children.
func (st *Stream) Shards() []ShardInfo {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]ShardInfo, 0, len(st.shards))
	for _, sh := range st.shards {
		out = append(out, sh.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Shard returns the shard with the given id.
func (st *Stream) Shard(id string) (*Shard, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	sh, ok := st.shards[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s in stream %s", ErrShardNotFound, id, st.name)
	}
	return sh, nil
}

// route finds the open shard owning h, and the channel that is closed when
// the shard map next changes (for a writer that finds its shard sealed).
func (st *Stream) route(h HashKey) (*Shard, <-chan struct{}, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.deleted {
		return nil, nil, fmt.Errorf("%w: %s", ErrStreamNotFound, st.name)
	}
	i := sort.Search(len(st.open), func(i int) bool { return st.open[i].info.Load().EndHash.Cmp(h) >= 0 })
	if i == len(st.open) {
		return nil, nil, fmt.Errorf("%w: no open shard of %s owns hash key %s", ErrUnavailable, st.name, h)
	}
	return st.open[i], st.mapCh, nil
}

// prepared is a record validated and encoded for appending.
type prepared struct {
	hash    HashKey
	payload []byte
	size    int64 // data + key, what Kinesis limits count
}

func (st *Stream) prepare(rec *Record, o AppendOptions, cfg StreamConfig, now time.Time) (prepared, error) {
	return st.prepareInto(nil, rec, o, cfg, now)
}

// prepareInto is prepare encoding into buf's space; the payload it returns
// is buf grown, also on error, so a pooled buffer is never lost.
func (st *Stream) prepareInto(buf []byte, rec *Record, o AppendOptions, cfg StreamConfig, now time.Time) (prepared, error) {
	fail := func(err error) (prepared, error) { return prepared{payload: buf}, err }
	if err := validKey(rec.Key); err != nil {
		return fail(err)
	}
	size := int64(len(rec.Data) + len(rec.Key))
	if limit := cfg.MaxRecordSize.Bytes(); size > limit {
		return fail(fmt.Errorf("%w: %d bytes of data and key, stream %s allows %d", ErrTooLarge, size, st.name, limit))
	}
	if rec.Arrival == 0 {
		rec.Arrival = now.UnixMilli()
	}
	h := HashOf(rec.Key)
	if o.ExplicitHashKey != nil {
		h = *o.ExplicitHashKey
	}
	payload, err := st.encodeTo(buf, rec)
	if err != nil {
		return fail(err)
	}
	return prepared{hash: h, payload: payload, size: size}, nil
}

// admit applies the stream's size cap and the shard's rate limit, waiting
// for capacity when the stream asks for backpressure.
func (st *Stream) admit(ctx context.Context, sh *Shard, cfg StreamConfig, n int, size int64, noWait bool) error {
	if err := st.checkCapacity(cfg); err != nil {
		return err
	}
	maxWait := cfg.Rate.MaxWait.D()
	if noWait || cfg.Rate.OnLimit == OnLimitReject {
		maxWait = 0
	}
	wait, ok := sh.limiter.reserve(n, size, st.store.now(), maxWait)
	if !ok {
		st.store.metrics.throttled.Add(int64(n))
		sh.writeThrottled.Add(int64(n))
		return fmt.Errorf("%w: %s of %s (would wait %v)", ErrThrottled, sh.ID(), st.name, wait.Round(time.Millisecond))
	}
	sh.load.add(n, size)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// admitPrefix takes, without waiting, the shard's rate for as many of the
// records at idx as it allows, in order, and says how many; err is why the
// rest are refused.
func (st *Stream) admitPrefix(sh *Shard, cfg StreamConfig, preps []prepared, idx []int) (int, error) {
	if err := st.checkCapacity(cfg); err != nil {
		return 0, err
	}
	now := st.store.now()
	// Whole first, as a waiting batch is admitted: an idle shard takes a
	// batch bigger than its burst and owes the rest.
	var size int64
	for _, i := range idx {
		size += preps[i].size
	}
	if _, ok := sh.limiter.reserve(len(idx), size, now, 0); ok {
		sh.load.add(len(idx), size)
		return len(idx), nil
	}
	for k, i := range idx {
		if wait, ok := sh.limiter.reserve(1, preps[i].size, now, 0); !ok {
			st.store.metrics.throttled.Add(int64(len(idx) - k))
			sh.writeThrottled.Add(int64(len(idx) - k))
			return k, fmt.Errorf("%w: %s of %s (would wait %v)", ErrThrottled, sh.ID(), st.name, wait.Round(time.Millisecond))
		}
		sh.load.add(1, preps[i].size)
	}
	return len(idx), nil
}

// checkCapacity refuses new data when the stream is at max_bytes and its
// policy is to keep what it has; with drop_oldest it makes room first.
// It counts allocated bytes (usage.go), walked again once a shard's data
// grew by a quarter segment: about when its log prepares the next one.
func (st *Stream) checkCapacity(cfg StreamConfig) error {
	limit := cfg.MaxBytes.Bytes()
	if limit <= 0 {
		return nil
	}
	st.refreshUsage(false, cfg.SegmentSize.Bytes()/4)
	if st.Bytes() < limit {
		return nil
	}
	if cfg.OnFull == OnFullDropOldest {
		st.store.enforceSize(st, cfg)
		if st.Bytes() < limit {
			return nil
		}
	}
	st.store.metrics.refusedFull.Add(1)
	return fmt.Errorf("%w: stream %s occupies %d bytes on disk, max_bytes is %d", ErrFull, st.name, st.Bytes(), limit)
}

func (st *Stream) append(ctx context.Context, rec *Record, o AppendOptions) (Appended, error) {
	cfg := st.Config()
	p, err := st.prepare(rec, o, cfg, st.store.now())
	if err != nil {
		return Appended{}, err
	}
	for {
		sh, mapCh, err := st.route(p.hash)
		if err != nil {
			return Appended{}, err
		}
		if err := st.admit(ctx, sh, cfg, 1, p.size, o.NoWait || o.Try); err != nil {
			return Appended{}, err
		}
		if o.NoWait {
			err = sh.lane.AppendAsync(p.payload, nil)
			if errors.Is(err, wal.ErrBusy) {
				st.store.metrics.throttled.Add(1)
				return Appended{}, fmt.Errorf("%w: %s commit queue is full", ErrThrottled, sh.ID())
			}
			if !errors.Is(err, wal.ErrSealed) {
				if err == nil {
					sh.inBytes.Add(p.size)
					sh.appended.Add(1) // queued: committed unless the log fails
				}
				return Appended{ShardID: sh.ID()}, walErr(sh, err)
			}
		} else {
			seq, err := sh.lane.Append(ctx, p.payload)
			if !errors.Is(err, wal.ErrSealed) {
				if err != nil {
					return Appended{}, walErr(sh, err)
				}
				st.store.metrics.appended.Add(1)
				sh.appended.Add(1)
				sh.inBytes.Add(p.size)
				return Appended{ShardID: sh.ID(), Seq: seq}, nil
			}
		}
		// The shard closed for a reshard after we routed to it: wait for the
		// new map, then route again to its child.
		select {
		case <-mapCh:
		case <-ctx.Done():
			return Appended{}, ctx.Err()
		}
	}
}

// appendBatch appends records as PutRecords does: each record has its own
// outcome, and records of one shard share one commit.
func (st *Stream) appendBatch(ctx context.Context, recs []*Record, opts []AppendOptions) ([]Appended, []error) {
	b := &batch{
		st:    st,
		cfg:   st.Config(),
		try:   len(opts) > 0 && opts[0].Try,
		preps: make([]prepared, len(recs)),
		out:   make([]Appended, len(recs)),
		errs:  make([]error, len(recs)),
	}
	pending := b.prepare(recs, opts)
	for len(pending) > 0 {
		groups, mapCh := b.route(pending)
		pending = b.commit(ctx, groups)
		if len(pending) > 0 {
			// Shards closed for a reshard after we routed to them: wait for
			// the new map, then route those records again to the children.
			select {
			case <-mapCh:
			case <-ctx.Done():
				for _, i := range pending {
					b.errs[i] = ctx.Err()
				}
				return b.out, b.errs
			}
		}
	}
	return b.out, b.errs
}

// batch is one appendBatch in flight: each record's frame and outcome, by
// the record's position in the call.
type batch struct {
	st    *Stream
	cfg   StreamConfig
	try   bool // AppendOptions.Try, taken from the first record's options
	preps []prepared
	out   []Appended
	errs  []error
}

// prepare frames every record and returns the positions of those that are
// valid; the others have their error.
func (b *batch) prepare(recs []*Record, opts []AppendOptions) (pending []int) {
	now := b.st.store.now()
	pending = make([]int, 0, len(recs))
	for i, r := range recs {
		var o AppendOptions
		if i < len(opts) {
			o = opts[i]
		}
		p, err := b.st.prepare(r, o, b.cfg, now)
		if err != nil {
			b.errs[i] = err
			continue
		}
		b.preps[i] = p
		pending = append(pending, i)
	}
	return pending
}

// route groups the pending records by the shard that takes them, and
// returns the channel closed when that shard map changes.
func (b *batch) route(pending []int) (map[*Shard][]int, <-chan struct{}) {
	groups := map[*Shard][]int{}
	var mapCh <-chan struct{}
	for _, i := range pending {
		sh, ch, err := b.st.route(b.preps[i].hash)
		if err != nil {
			b.errs[i] = err
			continue
		}
		mapCh = ch
		groups[sh] = append(groups[sh], i)
	}
	return groups, mapCh
}

// commit appends each group to its shard, the shards in parallel, and
// returns the records of shards that were sealed meanwhile.
func (b *batch) commit(ctx context.Context, groups map[*Shard][]int) (retry []int) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for sh, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.commitShard(ctx, sh, idx) {
				mu.Lock()
				retry = append(retry, idx...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return retry
}

// commitShard appends the records at idx to sh in one commit and records
// their outcomes; it reports whether sh was sealed, leaving them pending.
func (b *batch) commitShard(ctx context.Context, sh *Shard, idx []int) (sealed bool) {
	if b.try {
		n, err := b.st.admitPrefix(sh, b.cfg, b.preps, idx)
		for _, i := range idx[n:] {
			b.errs[i] = err
		}
		if idx = idx[:n]; len(idx) == 0 {
			return false
		}
	} else {
		var size int64
		for _, i := range idx {
			size += b.preps[i].size
		}
		if err := b.st.admit(ctx, sh, b.cfg, len(idx), size, false); err != nil {
			for _, i := range idx {
				b.errs[i] = err
			}
			return false
		}
	}
	payloads := make([][]byte, len(idx))
	for k, i := range idx {
		payloads[k] = b.preps[i].payload
	}
	first, err := sh.lane.AppendBatch(ctx, payloads)
	if errors.Is(err, wal.ErrSealed) {
		return true
	}
	for k, i := range idx {
		if err != nil {
			b.errs[i] = walErr(sh, err)
			continue
		}
		b.out[i] = Appended{ShardID: sh.ID(), Seq: first + uint64(k)}
	}
	if err == nil {
		b.st.store.metrics.appended.Add(int64(len(idx)))
		sh.appended.Add(int64(len(idx)))
		var size int64
		for _, i := range idx {
			size += b.preps[i].size
		}
		sh.inBytes.Add(size)
	}
	return false
}

// walErr translates a log failure into the store's vocabulary and keeps the
// log's chain too, so callers can still match wal.ErrNoSpace, wal.ErrFailed
// and syscall.ENOSPC, as wal/doc.go promises.
func walErr(sh *Shard, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wal.ErrNoSpace):
		sh.stream.store.metrics.refusedFull.Add(1)
		return fmt.Errorf("%w: disk full writing %s: %w", ErrFull, sh.ID(), err)
	case errors.Is(err, wal.ErrClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	default:
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, sh.ID(), err)
	}
}

// logName is the directory of a stream's log, beside its shard map and
// the logs of its shards from before version 3 (named by shard id).
const logName = "log"

// walOptions are the options of the stream's log and of its shards'
// legacy logs (name: for messages and metrics; first: where a new log
// starts).
func (st *Stream) walOptions(name string, first uint64) wal.Options {
	s := st.store
	opts := wal.Options{
		Name:         name,
		SegmentSize:  st.cfg.SegmentSize.Bytes(),
		FirstIndex:   first,
		FS:           s.opts.walFS,
		Logger:       s.log.With().Str("stream", st.name).Logger(),
		Sync:         wal.SyncAlways,
		SyncInterval: s.opts.Durability.Interval.D(),
		CommitDelay:  s.opts.Durability.CommitDelay.D(),
		Metrics:      s.walm,
		Tag:          arrivalTag,
	}
	if s.opts.Durability.Fsync == FsyncInterval {
		opts.Sync = wal.SyncInterval
	}
	return opts
}

// laneOf is the lane of a shard: the number in its id.
func laneOf(id string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(id, "shardId-"), 10, 16)
	if err != nil || !strings.HasPrefix(id, "shardId-") {
		return 0, fmt.Errorf("shards: shard id %q has no lane number (shardId-N, N < 65536)", id)
	}
	return uint16(n), nil
}

// newShard makes the shard described by info, a lane of the stream's log,
// with legacy, if not nil, its log from before version 3.
func (st *Stream) newShard(info ShardInfo, legacy *wal.Log) (*Shard, error) {
	id, err := laneOf(info.ID)
	if err != nil {
		return nil, err
	}
	sh := &Shard{stream: st, lane: st.log.Lane(id), limiter: newLimiter(st.cfg.Rate, st.store.now())}
	sh.info.Store(&info)
	if legacy != nil {
		sh.legacy.Store(legacy)
	}
	if info.Closed {
		// Not recorded by the log: a closed shard's lane is sealed again
		// at every open, so a writer that raced the close is refused.
		if _, err := sh.lane.Seal(); err != nil {
			return nil, err
		}
	}
	return sh, nil
}

// logStart is the first index of the stream's log.
func (st *Stream) logStart() uint64 { return st.start }

// install replaces the in-memory shard map with m (already durable) and
// wakes writers waiting on the old one. Callers hold reshardMu.
func (st *Stream) install(m streamMeta, added map[string]*Shard, removed []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.meta = m
	for id, sh := range added {
		st.shards[id] = sh
	}
	for _, id := range removed {
		delete(st.shards, id)
	}
	var closed []*Shard
	for _, sm := range m.Shards {
		if sh, ok := st.shards[sm.ID]; ok {
			info, _ := sm.info()
			if info.Closed && !sh.info.Load().Closed {
				closed = append(closed, sh)
			}
			sh.info.Store(&info)
		}
	}
	st.rebuildOpenLocked()
	// Readers tailing a parent wait on the log; tell them it has ended.
	if len(closed) > 0 {
		st.log.Wake()
	}
	close(st.mapCh)
	st.mapCh = make(chan struct{})
}

func (st *Stream) rebuildOpenLocked() {
	st.open = st.open[:0]
	for _, sh := range st.shards {
		if !sh.info.Load().Closed {
			st.open = append(st.open, sh)
		}
	}
	sort.Slice(st.open, func(i, j int) bool {
		return st.open[i].info.Load().StartHash.Cmp(st.open[j].info.Load().StartHash) < 0
	})
}

func (st *Stream) close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	var first error
	for _, sh := range st.shards {
		if lg := sh.legacy.Load(); lg != nil {
			if err := lg.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	if st.log != nil {
		if err := st.log.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// removeOrphans deletes shard directories the map does not name: before
// version 3, children of a reshard that crashed before its map was
// written. They never took a write, since writes reach a child only after
// the map naming it is durable.
func (st *Stream) removeOrphans() error {
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		return err
	}
	known := map[string]bool{logName: true}
	for _, sm := range st.meta.Shards {
		known[sm.ID] = true
	}
	for _, e := range entries {
		if e.IsDir() && !known[e.Name()] {
			st.store.log.Warn().Str("stream", st.name).Str("dir", e.Name()).Msg("removing shard directory left by an interrupted reshard")
			if err := os.RemoveAll(filepath.Join(st.dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
