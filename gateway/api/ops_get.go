package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/weir-gateway/weir/shards"
)

// GetRecords limits, as in Kinesis.
const (
	maxGetRecords = 10000
	maxGetBytes   = 10 << 20
	// MaxWaitMillis bounds a long-poll.
	MaxWaitMillis = 20000
	// closeRecheck is how often a waiting long-poll re-reads the shard
	// map: a reshard closes a shard without a commit, so Changed does not
	// fire for it.
	closeRecheck = 200 * time.Millisecond
)

// Shard iterator types.
const (
	iterTrimHorizon = "TRIM_HORIZON"
	iterLatest      = "LATEST"
	iterAtSeq       = "AT_SEQUENCE_NUMBER"
	iterAfterSeq    = "AFTER_SEQUENCE_NUMBER"
	iterAtTimestamp = "AT_TIMESTAMP"
)

func (s *Server) shardOf(st *shards.Stream, id string) (*shards.Shard, error) {
	if id == "" {
		return nil, validation("ShardId is required")
	}
	sh, err := st.Shard(id)
	if err != nil {
		if errors.Is(err, shards.ErrShardNotFound) {
			return nil, notFound("Shard %s in stream %s under account %s does not exist", id, st.Name(), s.account)
		}
		return nil, err
	}
	return sh, nil
}

// lastSeq is the shard's last stored sequence number, or StartSeq-1 when it
// never held a record.
func lastSeq(sh *shards.Shard, info shards.ShardInfo) uint64 {
	return max(sh.Last(), info.StartSeq-1)
}

func (s *Server) getShardIterator(_ context.Context, req *request) (any, error) {
	var in getShardIteratorInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	st, err := s.stream(req, in.streamRef)
	if err != nil {
		return nil, err
	}
	sh, err := s.shardOf(st, in.ShardId)
	if err != nil {
		return nil, err
	}
	info := sh.Info()
	last := lastSeq(sh, info)
	seqArg := func() (uint64, error) {
		if in.StartingSequenceNumber == "" {
			return 0, invalidArg("StartingSequenceNumber is required for ShardIteratorType %s", in.ShardIteratorType)
		}
		seq, err := seqParam("StartingSequenceNumber", info, in.StartingSequenceNumber)
		if err != nil {
			return 0, err
		}
		if seq+1 < info.StartSeq || seq > last+1 {
			return 0, invalidArg("StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid because it did not come from this stream or shard.",
				in.StartingSequenceNumber, info.ID, st.Name(), s.account)
		}
		return seq, nil
	}
	var next uint64
	switch in.ShardIteratorType {
	case iterTrimHorizon:
		next = max(sh.TrimHorizon(), info.StartSeq)
	case iterLatest:
		next = last + 1
	case iterAtSeq:
		seq, err := seqArg()
		if err != nil {
			return nil, err
		}
		next = max(seq, info.StartSeq)
	case iterAfterSeq:
		seq, err := seqArg()
		if err != nil {
			return nil, err
		}
		next = max(seq+1, info.StartSeq)
	case iterAtTimestamp:
		if in.Timestamp == nil {
			return nil, invalidArg("Timestamp is required for ShardIteratorType AT_TIMESTAMP")
		}
		if t := in.Timestamp.Time(); t.After(s.now()) {
			return nil, invalidArg("The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d",
				t.UnixMilli(), s.now().UnixMilli())
		} else {
			next = max(sh.SeqAtTime(t), info.StartSeq)
		}
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]", in.ShardIteratorType)
	}
	tok := s.sign.encodeIterator(iterator{Issued: s.now().UnixMilli(), StreamCreated: st.Created().UnixMilli(),
		Next: next, Stream: st.Name(), Shard: info.ID})
	return getShardIteratorOutput{ShardIterator: tok}, nil
}

func (s *Server) getRecords(ctx context.Context, req *request) (any, error) {
	return s.readRecords(ctx, req, false)
}

// longPollRecords is WeirGateway_20261125.GetRecords: GetRecords that, when
// the shard has nothing new, waits up to WaitMillis for a commit (or the
// shard's closure) instead of returning empty. The extended record fields
// (Topic, ClientId, QoS, UserProperties) are filled.
func (s *Server) longPollRecords(ctx context.Context, req *request) (any, error) {
	return s.readRecords(ctx, req, true)
}

func (s *Server) readRecords(ctx context.Context, req *request, long bool) (any, error) {
	token, limit, wait, err := parseGetRecords(req, long)
	if err != nil {
		return nil, err
	}
	q := recordsQuery{limit: limit, wait: wait, long: long}
	if q.it, q.st, q.sh, err = s.openIterator(req, token); err != nil {
		return nil, err
	}
	return s.pollRecords(ctx, q)
}

// recordsQuery is one GetRecords call, its arguments checked and its
// iterator resolved to a shard.
type recordsQuery struct {
	it    iterator
	st    *shards.Stream
	sh    *shards.Shard
	limit int
	wait  time.Duration // how long a long poll may wait for records
	long  bool
}

// parseGetRecords decodes and checks the arguments of GetRecords, and
// those of its long-poll variant when long is set.
func parseGetRecords(req *request, long bool) (token string, limit int, wait time.Duration, err error) {
	var in getRecordsInput
	if err := req.decode(&in); err != nil {
		return "", 0, 0, err
	}
	if in.ShardIterator == nil || *in.ShardIterator == "" {
		return "", 0, 0, validation("ShardIterator is required")
	}
	limit, err = limitArg("limit", in.Limit, maxGetRecords, maxGetRecords)
	if err != nil {
		return "", 0, 0, err
	}
	if long && in.WaitMillis != nil {
		if *in.WaitMillis < 0 || *in.WaitMillis > MaxWaitMillis {
			return "", 0, 0, validation("WaitMillis must be between 0 and %d, got %d", MaxWaitMillis, *in.WaitMillis)
		}
		wait = time.Duration(*in.WaitMillis) * time.Millisecond
	}
	return *in.ShardIterator, limit, wait, nil
}

// openIterator verifies a shard iterator and finds the shard it reads.
func (s *Server) openIterator(req *request, token string) (iterator, *shards.Stream, *shards.Shard, error) {
	it, err := s.sign.decodeIterator(token, s.now())
	if err != nil {
		return it, nil, nil, err
	}
	// An iterator is a capability of whoever got it; check the key anyway,
	// so a revoked or narrowed key stops reading at once.
	if err := s.allow(req, it.Stream); err != nil {
		return it, nil, nil, err
	}
	st, err := s.store.Stream(it.Stream)
	if err != nil {
		return it, nil, nil, notFoundStream(it.Stream, s, err)
	}
	if st.Created().UnixMilli() != it.StreamCreated {
		return it, nil, nil, notFound("Stream %s was deleted and created again; the shard iterator belongs to the old stream", it.Stream)
	}
	sh, err := s.shardOf(st, it.Shard)
	if err != nil {
		return it, nil, nil, err
	}
	return it, st, sh, nil
}

// pollRecords reads within the shard's read limit; a long poll waits, up
// to q.wait, for the limit to allow the read and for records to come.
func (s *Server) pollRecords(ctx context.Context, q recordsQuery) (any, error) {
	st, sh, it := q.st, q.sh, q.it
	lim := s.limiter(it.Stream, it.Shard)
	deadline := time.Now().Add(q.wait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		budget, delay, ok := lim.admit(s.now(), !q.long, maxGetBytes)
		if !ok {
			if q.long && time.Until(deadline) > delay {
				if err := s.sleep(ctx, delay); err != nil {
					return s.emptyResult(st, sh, it, q.long), nil
				}
				continue
			}
			s.metrics.throttled(it.Stream, it.Shard)
			return nil, newError(http.StatusBadRequest, errThroughputExceeded,
				"Rate exceeded for shard %s in stream %s under account %s.", it.Shard, it.Stream, s.account)
		}
		changed := sh.Changed()
		recs, next, err := readFrom(sh, it.Next, q.limit, budget)
		if err != nil {
			return nil, err
		}
		n := 0
		for i := range recs {
			n += len(recs[i].Data) + len(recs[i].Key)
		}
		lim.charge(n)
		it.Next = next
		info := sh.Info()
		atEnd := info.Closed && next > info.EndSeq
		if len(recs) > 0 || atEnd || !q.long || !time.Now().Before(deadline) {
			s.metrics.read(it.Stream, it.Shard, len(recs), n)
			res := s.result(st, sh, info, it, recs, atEnd, q.long)
			s.metrics.shard(it.Stream, it.Shard).iteratorAge.Store(res.millisBehind)
			return res, nil
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		switch woke, err := s.awaitChange(ctx, changed, timer.C); {
		case err != nil:
			return nil, err
		case woke == wokeClosing:
			return s.emptyResult(st, sh, it, q.long), nil
		case woke == wokeDeadline:
			deadline = time.Now() // one more read after the deadline, then answer
		}
	}
}

// wake says why awaitChange returned.
type wake int

const (
	wokeChanged  wake = iota // the shard changed, or it is time to recheck whether it closed
	wokeDeadline             // the long poll's wait is over
	wokeClosing              // the server is closing
)

// awaitChange waits for a commit to the shard, the long poll's deadline, or
// the server's closing. It wakes every closeRecheck too: a reshard closes a
// shard without a commit.
func (s *Server) awaitChange(ctx context.Context, changed <-chan struct{}, deadline <-chan time.Time) (wake, error) {
	recheck := time.NewTimer(closeRecheck)
	defer recheck.Stop()
	select {
	case <-changed:
	case <-recheck.C:
	case <-deadline:
		return wokeDeadline, nil
	case <-ctx.Done():
		return wokeChanged, ctx.Err()
	case <-s.closing:
		return wokeClosing, nil
	}
	return wokeChanged, nil
}

// readFrom reads from a position; a trimmed position continues at the trim
// horizon, as Kinesis does for an iterator whose records expired (the
// reader loses them silently; GetCheckpoints is where weir reports such a
// loss). It returns the records and the position after them.
func readFrom(sh *shards.Shard, from uint64, limit, budget int) ([]shards.Record, uint64, error) {
	for range 3 {
		recs, next, err := sh.Read(from, limit, budget)
		var te *shards.TrimmedError
		if errors.As(err, &te) {
			from = max(te.TrimHorizon, from)
			continue
		}
		if err != nil {
			return nil, from, err
		}
		// next may be past from with no record: the read passed over
		// other shards' records of the stream's log.
		return recs, next, nil
	}
	// Retention kept trimming under us; answer empty and let the client
	// come back.
	return nil, from, nil
}

func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errors.New("api: closing")
	}
}

func (s *Server) emptyResult(st *shards.Stream, sh *shards.Shard, it iterator, long bool) *getRecordsResult {
	return s.result(st, sh, sh.Info(), it, nil, false, long)
}

// result builds the GetRecords answer. At the end of a closed shard
// NextShardIterator is absent and ChildShards lists the shards to read
// next; that can come with the shard's last records.
func (s *Server) result(st *shards.Stream, sh *shards.Shard, info shards.ShardInfo, it iterator,
	recs []shards.Record, atEnd, ext bool) *getRecordsResult {
	now := s.now()
	out := &getRecordsResult{shard: info.ID, records: recs, ext: ext}
	if atEnd {
		out.children = childShards(st.Shards(), info.ID)
		return out
	}
	it.Issued = now.UnixMilli()
	tok := s.sign.encodeIterator(it)
	out.next = &tok
	if it.Next <= sh.Last() {
		if t, ok := sh.ArrivalOf(max(it.Next, sh.TrimHorizon())); ok {
			out.millisBehind = max(now.Sub(t).Milliseconds(), 0)
		}
	}
	return out
}

// childShards lists the shards that have parent among their parents.
func childShards(all []shards.ShardInfo, parent string) []childShard {
	out := []childShard{}
	for _, sh := range all {
		if sh.ParentID != parent && sh.AdjacentParentID != parent {
			continue
		}
		ps := []string{sh.ParentID}
		if sh.AdjacentParentID != "" {
			ps = append(ps, sh.AdjacentParentID)
		}
		out = append(out, childShard{ShardId: sh.ID, ParentShards: ps,
			HashKeyRange: hashKeyRange{StartingHashKey: sh.StartHash.String(), EndingHashKey: sh.EndHash.String()}})
	}
	return out
}
