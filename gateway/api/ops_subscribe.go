package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/smithy-go/eventstream"

	"github.com/weir-gateway/weir/shards"
)

// SubscribeToShard (enhanced fan-out): a registered consumer holds one
// response per shard open for up to 5 minutes and the gateway pushes
// records into it as they are committed, framed as AWS event-stream
// messages (application/vnd.amazon.eventstream; smithy-go's encoder writes
// the prelude, headers and CRCs). The push reads the shard through the
// one read path, Shard.Read and its commit notification Changed, so a
// record leaves within a commit of being stored; nothing polls.
//
// The response is an "initial-response" event, then SubscribeToShardEvent
// events: one at once (so the client has a ContinuationSequenceNumber
// before any record arrives), one whenever records were read, one every
// heartbeatEvery when nothing happens, and at the end of a closed shard a
// last one with ChildShards and no ContinuationSequenceNumber. An error
// after the response began is an exception event (ResourceInUseException
// when a later subscription took over, ResourceNotFoundException when the
// consumer or stream went away, InternalFailureException otherwise). The
// subscription ends quietly when it expires, the client leaves or the
// gateway stops; the client subscribes again from its last
// ContinuationSequenceNumber with AFTER_SEQUENCE_NUMBER.
const (
	// subscriptionLife is how long a subscription lasts, as in Kinesis
	// (Options.subscriptionLife shortens it in tests).
	subscriptionLife = 5 * time.Minute
	// takeoverAfter: within this of a subscription's start a second one
	// for the same consumer and shard is ResourceInUseException; later,
	// the second takes over and the first ends with that exception, as
	// Kinesis documents (a client that lost its connection need not wait
	// out the old subscription).
	takeoverAfter = 5 * time.Second
	// heartbeatEvery is how often an idle subscription sends an empty
	// event (MillisBehindLatest, and proof the stream is alive).
	heartbeatEvery = 5 * time.Second
	// maxEventBytes bounds the record bytes of one event (about 1.4 MB of
	// JSON; the event-stream limit is 16 MiB, one record may exceed it).
	maxEventBytes = 1 << 20
	// eventWriteTimeout ends a subscription whose client stopped reading.
	eventWriteTimeout = 30 * time.Second
	// eventRecordOverhead is a record's JSON besides its data and key:
	// field names, sequence number, timestamp.
	eventRecordOverhead = 160

	contentTypeEventStream = "application/vnd.amazon.eventstream"
	// eventContentTypeJSON is the :content-type of a JSON event payload,
	// what Kinesis sends.
	eventContentTypeJSON = "application/json"
)

type subscribeToShardInput struct {
	ConsumerARN      string            `json:"ConsumerARN"`
	ShardId          string            `json:"ShardId"`
	StartingPosition *startingPosition `json:"StartingPosition"`
}

type startingPosition struct {
	Type           string    `json:"Type"`
	SequenceNumber string    `json:"SequenceNumber,omitempty"`
	Timestamp      *wireTime `json:"Timestamp,omitempty"`
}

// subscribeToShardEvent is the reflective form of an event (CBOR).
type subscribeToShardEvent struct {
	Records                    []recordJSON `json:"Records"`
	ContinuationSequenceNumber *string      `json:"ContinuationSequenceNumber,omitempty"`
	MillisBehindLatest         int64        `json:"MillisBehindLatest"`
	ChildShards                []childShard `json:"ChildShards,omitempty"`
}

// subKey names the one subscription a consumer may hold on a shard.
type subKey struct{ stream, consumer, shard string }

// subscription is one SubscribeToShard from its checks to its end.
type subscription struct {
	s     *Server
	key   subKey
	codec codec
	// consumerCreated tells this registration from a later one of the
	// same name; streamCreated the stream from a later one of its name.
	consumerCreated, streamCreated time.Time
	st                             *shards.Stream
	sh                             *shards.Shard
	next                           uint64    // the next sequence number to push
	started                        time.Time // Server.now() at subscribe: the takeover rule's clock
	// preempted is closed when a later subscription takes this one over.
	preempted chan struct{}

	enc *eventstream.Encoder
	buf []byte
}

// responseStreamer is an operation result that writes its own response
// (serveAPI hands it the connection instead of encoding it).
type responseStreamer interface {
	stream(w http.ResponseWriter, r *http.Request)
}

func (s *Server) subscribeToShard(ctx context.Context, req *request) (any, error) {
	var in subscribeToShardInput
	if err := req.decode(&in); err != nil {
		return nil, err
	}
	switch {
	case in.ConsumerARN == "":
		return nil, validation("ConsumerARN is required")
	case in.ShardId == "":
		return nil, validation("ShardId is required")
	case in.StartingPosition == nil:
		return nil, validation("StartingPosition is required")
	}
	// resolveConsumer: the ARN of a consumer deregistered and registered
	// again is ResourceNotFound, as on every consumer operation.
	stream, ci, err := s.resolveConsumer(req, consumerRef{ConsumerARN: in.ConsumerARN})
	if err != nil {
		return nil, err
	}
	st, err := s.store.Stream(stream)
	if err != nil {
		return nil, notFoundStream(stream, s, err)
	}
	sh, err := s.shardOf(st, in.ShardId)
	if err != nil {
		return nil, err
	}
	next, err := s.startOf(ctx, req, st, sh, *in.StartingPosition)
	if err != nil {
		return nil, err
	}
	sub := &subscription{s: s, key: subKey{stream, ci.Name, sh.ID()}, codec: req.codec,
		consumerCreated: ci.Created, streamCreated: st.Created(), st: st, sh: sh, next: next,
		started: s.now(), preempted: make(chan struct{}), enc: eventstream.NewEncoder()}
	if err := s.claim(sub, in.ConsumerARN); err != nil {
		return nil, err
	}
	return sub, nil
}

// startOf resolves a StartingPosition to the first sequence number to push.
// Its members are GetShardIterator's under other names, so it goes through
// getShardIterator: one definition of what each type means and of which
// sequence numbers a shard accepts.
func (s *Server) startOf(ctx context.Context, req *request, st *shards.Stream, sh *shards.Shard, p startingPosition) (uint64, error) {
	switch p.Type {
	case iterTrimHorizon, iterLatest, iterAtSeq, iterAfterSeq, iterAtTimestamp:
	default:
		return 0, validation("1 validation error detected: Value '%s' at 'startingPosition.type' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]", p.Type)
	}
	body, err := json.Marshal(getShardIteratorInput{streamRef: streamRef{StreamName: st.Name()}, ShardId: sh.ID(),
		ShardIteratorType: p.Type, StartingSequenceNumber: p.SequenceNumber, Timestamp: p.Timestamp})
	if err != nil {
		return 0, err
	}
	out, err := s.getShardIterator(ctx, &request{codec: codecJSON, body: body, op: req.op, action: req.action, perm: req.perm, who: req.who})
	if err != nil {
		return 0, err
	}
	it, err := s.sign.decodeIterator(out.(getShardIteratorOutput).ShardIterator, s.now())
	if err != nil {
		return 0, err
	}
	return it.Next, nil
}

// claim makes sub the consumer's subscription to its shard, taking over
// one older than takeoverAfter.
func (s *Server) claim(sub *subscription, consumerARN string) error {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if old := s.subs[sub.key]; old != nil {
		if sub.started.Sub(old.started) < takeoverAfter {
			return newError(http.StatusBadRequest, errResourceInUse,
				"Another active subscription exists for consumer %s on shard %s; a new one may take it over %s after it began.",
				consumerARN, sub.key.shard, takeoverAfter)
		}
		close(old.preempted)
	}
	s.subs[sub.key] = sub
	return nil
}

func (s *Server) release(sub *subscription) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subs[sub.key] == sub {
		delete(s.subs, sub.key)
	}
}

// subscriberLimiter is a registered consumer's own read budget on a shard
// (bytes_per_sec, as enhanced fan-out gives each consumer 2 MiB/s per
// shard); it is separate from the budget GetRecords readers share. It is
// looked up for every read, so Apply's new limits reach running
// subscriptions.
func (s *Server) subscriberLimiter(k subKey) *readLimiter {
	key := k.stream + "/" + k.shard + "/" + k.consumer
	s.limMu.Lock()
	defer s.limMu.Unlock()
	l, ok := s.limiters[key]
	if !ok {
		l = newReadLimiter(0, s.readLimits.BytesPerSec.Bytes(), s.now())
		s.limiters[key] = l
	}
	return l
}

// stream is the response: it runs until the subscription ends.
func (sub *subscription) stream(w http.ResponseWriter, r *http.Request) {
	s := sub.s
	defer s.release(sub)
	rc := http.NewResponseController(w)
	// The request has been read: lift ReadTimeout, which on HTTP/1.1
	// would cancel the request's context a minute after it began. The
	// write deadline set per event must not outlive the response on a
	// kept-alive connection.
	_ = rc.SetReadDeadline(time.Time{})
	defer rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", contentTypeEventStream)
	w.WriteHeader(http.StatusOK)
	send := func(msg eventstream.Message) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if err := sub.enc.Encode(w, msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(sub.message("initial-response", []byte("{}"))) {
		return
	}
	if err := sub.push(r.Context(), send); err != nil {
		ae := toAPIError(err)
		s.log.Debug().Str("stream", sub.key.stream).Str("consumer", sub.key.consumer).Str("shard", sub.key.shard).
			Str("error", ae.Type).Msg("subscription ended: " + ae.Message)
		send(sub.exception(ae))
	}
}

// push sends events until the subscription ends. It returns the error to
// report as an exception event, nil for a quiet end.
func (sub *subscription) push(ctx context.Context, send func(eventstream.Message) bool) error {
	s := sub.s
	life := s.subLife
	if life <= 0 {
		life = subscriptionLife
	}
	expire := time.NewTimer(life)
	defer expire.Stop()
	heartbeat := time.NewTimer(heartbeatEvery)
	defer heartbeat.Stop()
	var wait *time.Timer // the read budget's
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	sendNow := true // the first event goes out at once, records or not
	for {
		if err := sub.stillRegistered(); err != nil {
			return err
		}
		budget, delay, ok := s.subscriberLimiter(sub.key).admit(s.now(), false, maxEventBytes)
		if !ok {
			if wait == nil {
				wait = time.NewTimer(delay)
			} else {
				wait.Reset(delay)
			}
			select {
			case <-wait.C:
				continue
			case <-expire.C:
				return nil
			case <-ctx.Done():
				return nil
			case <-s.closing:
				return nil
			case <-sub.preempted:
				return sub.takenOver()
			}
		}
		changed := sub.sh.Changed()
		recs, next, err := readFrom(sub.sh, sub.next, maxGetRecords, budget)
		if err != nil {
			return sub.readFailed(err)
		}
		n := 0
		for i := range recs {
			n += len(recs[i].Data) + len(recs[i].Key)
		}
		s.subscriberLimiter(sub.key).charge(n)
		sub.next = next
		info := sub.sh.Info()
		atEnd := info.Closed && next > info.EndSeq
		if len(recs) > 0 || atEnd || sendNow {
			s.metrics.read(sub.key.stream, sub.key.shard, len(recs), n)
			msg, err := sub.event(recs, info, atEnd)
			if err != nil {
				return err
			}
			if !send(msg) || atEnd {
				return nil
			}
			sendNow = false
			heartbeat.Reset(heartbeatEvery)
			if len(recs) > 0 {
				continue // there may be more; Changed was taken before this read
			}
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			sendNow = true
		case <-expire.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-sub.preempted:
			return sub.takenOver()
		}
	}
}

func (sub *subscription) takenOver() error {
	return newError(http.StatusBadRequest, errResourceInUse,
		"Another subscription for consumer %s on shard %s took this one over.", sub.key.consumer, sub.key.shard)
}

// stillRegistered ends the subscription of a consumer that was
// deregistered (or deregistered and registered again).
func (sub *subscription) stillRegistered() error {
	ci, err := sub.s.store.Checkpoints().Consumer(sub.key.stream, sub.key.consumer)
	if errors.Is(err, shards.ErrConsumerNotFound) || (err == nil && !ci.Created.Equal(sub.consumerCreated)) {
		return notFound("Consumer %s under stream %s was deregistered.", sub.key.consumer, sub.key.stream)
	}
	return err
}

// readFailed says why a read failed: the stream was deleted (its logs
// closed), the gateway is stopping (a quiet end), or the shard failed.
func (sub *subscription) readFailed(err error) error {
	select {
	case <-sub.s.closing:
		return nil
	default:
	}
	if st, serr := sub.s.store.Stream(sub.key.stream); serr != nil || !st.Created().Equal(sub.streamCreated) {
		return notFound("Stream %s under account %s was deleted.", sub.key.stream, sub.s.account)
	}
	return err
}

// event renders one SubscribeToShardEvent.
func (sub *subscription) event(recs []shards.Record, info shards.ShardInfo, atEnd bool) (eventstream.Message, error) {
	g := getRecordsResult{shard: info.ID, records: recs}
	var ev subscribeToShardEvent
	if atEnd {
		// No ContinuationSequenceNumber: the shard is done, read its
		// children (KCL tests exactly this for the shard's end).
		ev.ChildShards = childShards(sub.st.Shards(), info.ID)
	} else {
		// The last record pushed (or the one before the position when
		// none was): AFTER_SEQUENCE_NUMBER with it continues here.
		c := shards.FormatSeq(info.ID, sub.next-1)
		ev.ContinuationSequenceNumber = &c
		ev.MillisBehindLatest = millisBehind(sub.sh, sub.next, sub.s.now())
	}
	if sub.codec == codecCBOR {
		ev.Records = g.output().Records
		b, err := cborEnc.Marshal(ev)
		if err != nil {
			return eventstream.Message{}, err
		}
		return sub.message("SubscribeToShardEvent", b), nil
	}
	// Sized for the whole event up front: a full event is about 1.4 MB
	// of JSON, too big to keep between events (maxPooledBuffer), and
	// growing it by doubling copied and cleared it twice over.
	size := 256
	for i := range recs {
		size += base64.StdEncoding.EncodedLen(len(recs[i].Data)) + len(recs[i].Key) + eventRecordOverhead
	}
	b := growTo(sub.buf[:0], size)
	b = append(b, `{"Records":[`...)
	for i := range recs {
		b = g.appendRecord(b, i)
	}
	b = append(b, ']')
	if ev.ContinuationSequenceNumber != nil {
		b = append(b, `,"ContinuationSequenceNumber":"`...)
		b = append(b, *ev.ContinuationSequenceNumber...)
		b = append(b, '"')
	}
	b = append(b, `,"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, ev.MillisBehindLatest, 10)
	if ev.ChildShards != nil {
		cb, err := json.Marshal(ev.ChildShards)
		if err != nil {
			return eventstream.Message{}, err
		}
		b = append(append(b, `,"ChildShards":`...), cb...)
	}
	b = append(b, '}')
	if cap(b) <= maxPooledBuffer {
		sub.buf = b
	}
	return sub.message("SubscribeToShardEvent", b), nil
}

// millisBehind is the age of the record at next, 0 when there is none.
func millisBehind(sh *shards.Shard, next uint64, now time.Time) int64 {
	if next > sh.Last() {
		return 0
	}
	t, ok := sh.ArrivalOf(max(next, sh.TrimHorizon()))
	if !ok {
		return 0
	}
	return max(now.Sub(t).Milliseconds(), 0)
}

func (sub *subscription) contentType() string {
	if sub.codec == codecCBOR {
		return contentTypeCBOR
	}
	return eventContentTypeJSON
}

func (sub *subscription) message(eventType string, payload []byte) eventstream.Message {
	var m eventstream.Message
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(eventType))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue(sub.contentType()))
	m.Payload = payload
	return m
}

// exception renders an error as an exception event. The event stream
// union has its own names: what is not a missing or busy resource is
// InternalFailureException.
func (sub *subscription) exception(ae *apiError) eventstream.Message {
	name := "InternalFailureException"
	switch ae.Type {
	case errResourceNotFound, errResourceInUse:
		name = ae.Type
	}
	payload, err := sub.codec.encode(nil, errorBody{Type: name, Message: ae.Message})
	if err != nil {
		payload = []byte(`{}`)
	}
	var m eventstream.Message
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.ExceptionMessageType))
	m.Headers.Set(eventstream.ExceptionTypeHeader, eventstream.StringValue(name))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue(sub.contentType()))
	m.Payload = payload
	return m
}
