package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/weir-gateway/weir/firmware-sim/fleet"
	"github.com/weir-gateway/weir/firmware-sim/payload"
	"github.com/weir-gateway/weir/firmware-sim/verify"
	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/integration/faultproxy"
	"github.com/weir-gateway/weir/integration/harness"
	"github.com/weir-gateway/weir/integration/kinesalite"
)

// Issue 5's end-to-end tests: the real weir binary takes QoS 1 publishes
// from a firmware-sim fleet and forwards its stream through the fault
// proxy to kinesalite; everything is read back from kinesalite and held
// against the fleet's ledger: complete, in device order (first
// occurrences), under the device's partition key, and without duplicates
// where no failure was ambiguous.

const (
	fwdDevices  = 30
	fwdMessages = 100
	// drainTimeout bounds the wait for a forwarder to get everything
	// upstream once the fleet is done.
	drainTimeout = 60 * time.Second
)

// faultCase is one upstream misbehaviour.
type faultCase struct {
	name     string
	envelope string
	faults   faultproxy.Faults
	// schedule, if set, changes the faults over time from the start of
	// the fleet, for a few seconds of its own; it returns early when ctx
	// ends, and never leaves on a fault that would stop the drain.
	schedule func(ctx context.Context, p *faultproxy.Proxy, w *harness.Weir, target string, obs *observations)
	// strict: the only ambiguous failures are requests the forwarder
	// timed out (seen by the tap), so duplicates beyond their entries are
	// a forwarder bug, and with none timed out there must be none.
	strict bool
	// injected counts the faults that actually happened; the case proves
	// nothing unless it is positive.
	injected func(faultproxy.Counters) int64
}

// observations are what a schedule saw of the gateway during an outage.
type observations struct {
	mu         sync.Mutex
	states     map[string]bool
	maxLag     int64
	lastErrors []string
}

func (o *observations) see(f harness.ForwarderState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.states == nil {
		o.states = map[string]bool{}
	}
	o.states[f.State] = true
	o.maxLag = max(o.maxLag, f.LagRecords)
	if f.LastError != "" && len(o.lastErrors) < 3 {
		o.lastErrors = append(o.lastErrors, f.LastError)
	}
}

func faultCases() []faultCase {
	return []faultCase{
		{name: "none-raw", envelope: "raw", strict: true},
		{name: "none-json", envelope: "json", strict: true},
		{
			name: "record-throttle", envelope: "json", strict: true,
			faults:   faultproxy.Faults{RecordThrottle: 0.2},
			injected: func(c faultproxy.Counters) int64 { return c.RecordsThrottled },
		},
		{
			name: "request-throttle-bursts", envelope: "raw", strict: true,
			schedule: func(ctx context.Context, p *faultproxy.Proxy, _ *harness.Weir, _ string, _ *observations) {
				// 300ms of every request throttled, 300ms of calm, for 3s
				// whether or not the fleet is done: the backlog drains
				// through the bursts.
				defer p.Update(func(f *faultproxy.Faults) { f.RequestThrottle = 0 })
				for i := range 10 {
					rate := float64(1 - i%2)
					p.Update(func(f *faultproxy.Faults) { f.RequestThrottle = rate })
					if !sleepCtx(ctx, 300*time.Millisecond) {
						return
					}
				}
			},
			injected: func(c faultproxy.Counters) int64 { return c.RequestsThrottled },
		},
		{
			name: "5xx-before", envelope: "json", strict: true,
			faults:   faultproxy.Faults{ErrorBefore: 0.2},
			injected: func(c faultproxy.Counters) int64 { return c.ErrorsBefore },
		},
		{
			name: "5xx-after", envelope: "raw",
			faults:   faultproxy.Faults{ErrorAfter: 0.2},
			injected: func(c faultproxy.Counters) int64 { return c.ErrorsAfter },
		},
		{
			// Slower than request_timeout (2s): the forwarder gives up on
			// a request the upstream has stored.
			name: "slow", envelope: "json", strict: true,
			faults:   faultproxy.Faults{Slow: 0.03, SlowDelay: 3 * time.Second},
			injected: func(c faultproxy.Counters) int64 { return c.Slowed },
		},
		{
			name: "connection-resets", envelope: "raw",
			faults:   faultproxy.Faults{Reset: 0.1, ResetAfter: 0.05},
			injected: func(c faultproxy.Counters) int64 { return c.Resets + c.ResetsAfter },
		},
		{
			// Down refuses before forwarding: nothing ambiguous.
			name: "upstream-down-3s", envelope: "json", strict: true,
			schedule: func(ctx context.Context, p *faultproxy.Proxy, w *harness.Weir, target string, obs *observations) {
				if !sleepCtx(ctx, 300*time.Millisecond) {
					return
				}
				p.Update(func(f *faultproxy.Faults) { f.Down = true })
				defer p.Update(func(f *faultproxy.Faults) { f.Down = false })
				// Stay down for 3s even if the fleet is done sooner: the
				// outage must outlast many backoff rounds.
				end := time.Now().Add(3 * time.Second)
				for time.Now().Before(end) {
					if f, err := w.ForwarderTo(target); err == nil {
						obs.see(f)
					}
					time.Sleep(100 * time.Millisecond)
				}
			},
			injected: func(c faultproxy.Counters) int64 { return c.Refused },
		},
	}
}

// TestForwardFaults runs every upstream fault against a fresh gateway,
// one after the other, all against one kinesalite (a stream per case).
func TestForwardFaults(t *testing.T) {
	start := time.Now()
	ep, _ := kinesalite.Start(t)
	up := kinesalite.NewClient(ep)
	for i, c := range faultCases() {
		t.Run(c.name, func(t *testing.T) { runFaultCase(t, ep, up, c, uint64(100+i)) })
	}
	t.Logf("all fault cases: %v", time.Since(start).Round(time.Millisecond))
}

func runFaultCase(t *testing.T, ep string, up *kinesis.Client, c faultCase, seed uint64) {
	caseStart := time.Now()
	target := "cloud-" + c.name
	createUpstream(t, up, target)
	proxy, tap := newUpstream(t, ep, seed)
	proxy.Set(c.faults)
	w := startForwardingWeir(t, harness.Forwarder{TargetStream: target, Endpoint: tap.URL(), Envelope: c.envelope})

	ctx, cancel := context.WithCancel(context.Background())
	var obs observations
	scheduleDone := make(chan struct{})
	go func() {
		defer close(scheduleDone)
		if c.schedule != nil {
			c.schedule(ctx, proxy, w, target, &obs)
		}
	}()
	t.Cleanup(func() { cancel(); <-scheduleDone })
	led, sum := harness.RunSimFleet(t, fwdFleet(w, seed, fwdDevices, fwdMessages))
	published := time.Since(caseStart)
	if sum.Failed != 0 || sum.Acked != uint64(fwdDevices*fwdMessages) {
		t.Fatalf("fleet: generated %d, acked %d, failed %d (%v)", sum.Generated, sum.Acked, sum.Failed, sum.FailedBy)
	}

	res := waitUpstream(t, w, up, target, led, c.envelope, drainTimeout)
	<-scheduleDone // bounded: a few seconds at most
	rep := res.report
	counters := proxy.Counters()
	timedOut, timedOutEntries := tap.Abandoned()
	t.Logf("%s: published %d in %v; upstream %d records (%d duplicates) after %v; forwarder sent %d resent %d; requests timed out %d (%d entries); proxy %+v",
		c.name, sum.Acked, published.Round(time.Millisecond), res.records, rep.Duplicated,
		time.Since(caseStart).Round(time.Millisecond), res.fwd.Sent, res.fwd.Resent, timedOut, timedOutEntries, counters)

	checkReport(t, rep, false)
	if rep.Extra != 0 {
		t.Errorf("%d records upstream that no device had acknowledged (no connection was cut in this case)", rep.Extra)
	}
	if c.strict {
		checkNoDuplicates(t, rep.Duplicated, tap, 1)
	}
	if c.injected != nil && c.injected(counters) == 0 {
		t.Errorf("no %s fault was injected: the case proves nothing (proxy %+v)", c.name, counters)
	}
	// Everything the proxy passed on, kinesalite stored; nothing else got
	// there (the throttled entries were cut out of the requests).
	if int64(res.records) != counters.RecordsForwarded {
		t.Errorf("kinesalite holds %d records, the proxy forwarded %d entries", res.records, counters.RecordsForwarded)
	}
	// Lag accounting: each local record counted once as sent.
	if res.fwd.Sent != int64(sum.Acked) || res.fwd.Lost != 0 || res.fwd.LagRecords != 0 {
		t.Errorf("forwarder reports sent %d, lost %d, lag %d; want sent %d (every stored record once), no loss, no lag",
			res.fwd.Sent, res.fwd.Lost, res.fwd.LagRecords, sum.Acked)
	}
	if c.injected == nil && c.schedule == nil && res.fwd.Resent > timedOutEntries {
		t.Errorf("forwarder resent %d records with a healthy upstream (%d entries timed out)", res.fwd.Resent, timedOutEntries)
	}
	if c.envelope == "json" {
		checkEnvelopeIDs(t, res, true)
	}
	if c.name == "upstream-down-3s" {
		obs.mu.Lock()
		t.Logf("during the outage: states %v, max lag %d, errors %q", obs.states, obs.maxLag, obs.lastErrors)
		if !obs.states["backoff"] || obs.maxLag == 0 || len(obs.lastErrors) == 0 {
			t.Errorf("while the upstream was down the gateway reported states %v, max lag %d, last errors %q; want backoff, a lag and the error",
				obs.states, obs.maxLag, obs.lastErrors)
		}
		obs.mu.Unlock()
	}
	checkStreamsCLI(t, w, target)
	w.Stop()
}

// TestForwardKill9: the gateway is killed with SIGKILL twice while it
// forwards into a slow, throttling upstream with a backlog: once while
// devices publish, once after they are done. After each restart it
// resumes from its checkpoint; in the end kinesalite holds every
// acknowledged message, each device's first occurrences in order.
func TestForwardKill9(t *testing.T) {
	start := time.Now()
	ep, _ := kinesalite.Start(t)
	up := kinesalite.NewClient(ep)
	const target = "cloud-kill9"
	createUpstream(t, up, target)
	proxy, tap := newUpstream(t, ep, 7)
	proxy.Set(faultproxy.Faults{RecordThrottle: 0.3, Slow: 0.05, SlowDelay: 2500 * time.Millisecond})
	w := startForwardingWeir(t, harness.Forwarder{TargetStream: target, Endpoint: tap.URL(), Envelope: "json"})

	cfg := fwdFleet(w, 7, fwdDevices, fwdMessages)
	cfg.Groups[0].Rate = 40 // 100 messages in ~2.5s: the first kill lands mid-run
	cfg.MaxReconnectInterval = 500 * time.Millisecond
	run := harness.StartSimFleet(t, cfg)

	// Kill 1: devices publishing, forwarder mid-way.
	before := waitForwarding(t, w, target, 200, 30*time.Second)
	w.Kill9()
	t.Logf("kill 1 after %v: forwarder had sent %d, lag %d (%s)", time.Since(start).Round(time.Millisecond), before.Sent, before.LagRecords, before.State)
	w.Restart()

	led, sum := run.Wait()
	t.Logf("fleet: generated %d, acked %d, failed %d, connections lost %d", sum.Generated, sum.Acked, sum.Failed, sum.ConnectionsLost)
	if sum.Acked < uint64(fwdDevices*fwdMessages/2) {
		t.Fatalf("only %d of %d messages acknowledged", sum.Acked, fwdDevices*fwdMessages)
	}

	// Kill 2: fleet done, backlog still going up.
	before = waitForwarding(t, w, target, 100, 30*time.Second)
	w.Kill9()
	t.Logf("kill 2 after %v: forwarder had sent %d since restart, lag %d (%s)", time.Since(start).Round(time.Millisecond), before.Sent, before.LagRecords, before.State)
	w.Restart()
	// The upstream recovers; the restarted gateway drains.
	proxy.Set(faultproxy.Faults{RecordThrottle: 0.1})

	res := waitUpstream(t, w, up, target, led, "json", drainTimeout)
	rep := res.report
	timedOut, _ := tap.Abandoned() // includes the requests the kills cut
	t.Logf("kill9: published %d (acked), upstream %d records, %d duplicates, %d stored but unacknowledged; after %v; requests timed out or cut %d; proxy %+v",
		sum.Acked, res.records, rep.Duplicated, rep.Extra, time.Since(start).Round(time.Millisecond), timedOut, proxy.Counters())
	checkReport(t, rep, true)
	checkEnvelopeIDs(t, res, false)
	if res.fwd.Lost != 0 || res.fwd.LagRecords != 0 {
		t.Errorf("after the drain the forwarder reports lost %d, lag %d", res.fwd.Lost, res.fwd.LagRecords)
	}
	checkStreamsCLI(t, w, target)
	w.Stop()
}

// TestForwardAggregate: with aggregate: true, a few devices publishing
// fast are packed into KPL aggregated records; deaggregated (by our
// decoder and by AWS's aws-kinesis-agg) they are complete and in order,
// and per-record throttling, which fails an aggregate whole, adds no
// duplicate.
func TestForwardAggregate(t *testing.T) {
	start := time.Now()
	ep, _ := kinesalite.Start(t)
	up := kinesalite.NewClient(ep)
	const target = "cloud-aggregate"
	createUpstream(t, up, target)
	proxy, tap := newUpstream(t, ep, 9)
	proxy.Set(faultproxy.Faults{RecordThrottle: 0.2})
	w := startForwardingWeir(t, harness.Forwarder{TargetStream: target, Endpoint: tap.URL(), Envelope: "raw", Aggregate: true})

	const devices, messages = 5, 400
	led, sum := harness.RunSimFleet(t, fwdFleet(w, 9, devices, messages))
	if sum.Failed != 0 || sum.Acked != devices*messages {
		t.Fatalf("fleet: generated %d, acked %d, failed %d (%v)", sum.Generated, sum.Acked, sum.Failed, sum.FailedBy)
	}
	res := waitUpstream(t, w, up, target, led, "raw", drainTimeout)
	rep := res.report
	counters := proxy.Counters()
	t.Logf("aggregate: published %d; upstream %d Kinesis records (%d aggregated) holding %d user records, %d duplicates; after %v; proxy %+v",
		sum.Acked, res.records, res.aggregates, res.userRecords, rep.Duplicated, time.Since(start).Round(time.Millisecond), counters)
	checkReport(t, rep, false)
	// An aggregate holds up to a few hundred user records.
	checkNoDuplicates(t, rep.Duplicated, tap, 1000)
	if counters.RecordsThrottled == 0 {
		t.Errorf("no aggregate was throttled: the case proves nothing")
	}
	if res.aggregates == 0 || res.records >= res.userRecords {
		t.Errorf("%d user records went up as %d Kinesis records (%d aggregated): nothing was aggregated", res.userRecords, res.records, res.aggregates)
	}
	if res.fwd.Sent != int64(sum.Acked) || res.fwd.Lost != 0 {
		t.Errorf("forwarder reports sent %d, lost %d; want %d, 0", res.fwd.Sent, res.fwd.Lost, sum.Acked)
	}
	checkWithNpmDeaggregator(t, res.raw)
	w.Stop()
}

// ---- helpers ----

func createUpstream(t *testing.T, up *kinesis.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kinesalite.CreateStream(ctx, up, name, 4); err != nil {
		t.Fatal(err)
	}
}

// newUpstream puts the fault proxy in front of kinesalite and a tap in
// front of the proxy: forwarder -> tap -> fault proxy -> kinesalite.
func newUpstream(t *testing.T, upstream string, seed uint64) (*faultproxy.Proxy, *harness.Tap) {
	t.Helper()
	p, err := faultproxy.New(upstream, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, harness.StartTap(t, p.URL())
}

// checkNoDuplicates: where no injected failure is ambiguous, the only
// duplicates allowed are the entries of requests the forwarder itself
// timed out (the machine was too slow for request_timeout), each of which
// may hold up to perEntry user records.
func checkNoDuplicates(t *testing.T, dups int, tap *harness.Tap, perEntry int) {
	t.Helper()
	reqs, entries := tap.Abandoned()
	switch {
	case dups == 0:
	case reqs == 0:
		t.Errorf("%d duplicates upstream, but no failure was ambiguous (no request timed out): a partial or refused request must not lead to a resend of stored records", dups)
	case int64(dups) > entries*int64(perEntry):
		t.Errorf("%d duplicates upstream, more than the %d entries of the %d requests that timed out", dups, entries, reqs)
	default:
		t.Logf("%d duplicates, all explained by %d requests (%d entries) that outlived request_timeout (stored upstream, reported failed)", dups, reqs, entries)
	}
}

// startForwardingWeir starts the gateway with the harness's default
// stream (4 shards, no rate limits) and route, plus one forwarder.
func startForwardingWeir(t *testing.T, f harness.Forwarder) *harness.Weir {
	t.Helper()
	w := harness.StartWeir(t, harness.Opts{
		Extra: harness.ForwardersYAML(f),
		Env:   harness.AWSTestEnv(t.TempDir()),
	})
	return w
}

func fwdFleet(w *harness.Weir, seed uint64, devices, messages int) fleet.Config {
	return fleet.Config{
		Broker:       w.MQTTURL(),
		Seed:         seed,
		CleanSession: true,
		Ramp:         200 * time.Millisecond,
		Groups:       []fleet.Group{{Name: "dev", Count: devices, Messages: messages, QoS: 1}},
	}
}

// waitForwarding waits until the forwarder has acknowledged at least sent
// records upstream and still has a backlog, so that a kill lands
// mid-forwarding.
func waitForwarding(t *testing.T, w *harness.Weir, target string, sent int64, limit time.Duration) harness.ForwarderState {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last harness.ForwarderState
	var lastErr error
	for time.Now().Before(deadline) {
		f, err := w.ForwarderTo(target)
		if err == nil {
			last = f
			if f.Sent >= sent && f.LagRecords > 0 {
				return f
			}
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("forwarder did not reach %d sent with a backlog within %v: last %+v (%v)", sent, limit, last, lastErr)
	return last
}

// upstreamResult is everything read back from kinesalite.
type upstreamResult struct {
	report      verify.Report
	records     int // Kinesis records
	aggregates  int // of which KPL aggregates
	userRecords int // after deaggregation
	fwd         harness.ForwarderState
	raw         []verify.Record // the aggregated ones, for the npm check
	// ids: json envelope id -> message; msgIDs: message -> ids seen.
	ids    map[string]msgKey
	msgIDs map[msgKey]map[string]bool
	idErrs []string
}

type msgKey struct {
	device string
	seq    uint64
}

// waitUpstream polls kinesalite (incrementally) and the gateway's
// forwarder report until every ledger entry is upstream and the forwarder
// has nothing left, then returns the verdict on everything read.
func waitUpstream(t *testing.T, w *harness.Weir, up *kinesis.Client, target string, led *harness.Ledger, envelope string, limit time.Duration) upstreamResult {
	t.Helper()
	env, err := verify.ParseEnvelope(envelope)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Second)
	defer cancel()
	reader := verify.NewReader(up, target)
	reader.Poll = 30 * time.Millisecond
	res := upstreamResult{ids: map[string]msgKey{}, msgIDs: map[msgKey]map[string]bool{}}
	var occs []verify.Occurrence
	foreign := 0
	deadline := time.Now().Add(limit)
	for {
		recs, err := reader.Pass(ctx)
		if err != nil {
			t.Fatalf("reading %s from kinesalite: %v", target, err)
		}
		for _, rec := range recs {
			res.records++
			users, err := forwarder.DecodeAggregate(rec.Data, rec.PartitionKey)
			if err != nil {
				t.Errorf("record %s/%s: %v", rec.Shard, rec.SequenceNum, err)
				foreign++
				continue
			}
			if forwarder.IsAggregate(rec.Data) {
				res.aggregates++
				res.raw = append(res.raw, rec)
			}
			for _, u := range users {
				res.userRecords++
				id, err := verify.Decode(u.Data, env)
				if err != nil {
					foreign++
					continue
				}
				occs = append(occs, verify.Occurrence{Device: id.Device, Seq: id.Seq, TS: id.TS,
					PartitionKey: u.PartitionKey, Shard: rec.Shard, SequenceNum: rec.SequenceNum})
				if env == verify.EnvelopeJSON {
					res.noteEnvelope(u.Data, u.PartitionKey, msgKey{id.Device, id.Seq})
				}
			}
		}
		res.report = verify.Check(led.Entries, occs, foreign, verify.Options{})
		f, ferr := w.ForwarderTo(target)
		if ferr == nil {
			res.fwd = f
		}
		if res.report.Missing == 0 && ferr == nil && f.LagRecords == 0 {
			return res
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			res.report.WriteText(&b, 10)
			t.Fatalf("not everything reached %s within %v: forwarder %+v (%v)\n%s", target, limit, res.fwd, ferr, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noteEnvelope checks one json envelope: its key is the partition key,
// and its id names one message only.
func (r *upstreamResult) noteEnvelope(data []byte, key string, m msgKey) {
	var env forwarder.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		r.idErr("envelope of %s/%d: %v", m.device, m.seq, err)
		return
	}
	want := strings.Join([]string{env.Gateway, env.Stream, env.Shard, env.Seq}, "/")
	switch {
	case env.ID == "" || env.Stream != "telemetry" || env.Shard == "" || env.Seq == "":
		r.idErr("envelope of %s/%d lacks its identity: %+v", m.device, m.seq, env)
	case env.ID != want:
		r.idErr("envelope id %q is not gateway/stream/shard/seq %q", env.ID, want)
	case env.Key != key || env.Key != m.device:
		r.idErr("envelope of %s/%d has key %q, partition key %q", m.device, m.seq, env.Key, key)
	case env.Topic != "devices/"+m.device+"/telemetry" || env.ClientID != m.device || env.QoS != 1:
		r.idErr("envelope of %s/%d: topic %q client %q qos %d", m.device, m.seq, env.Topic, env.ClientID, env.QoS)
	}
	if prev, ok := r.ids[env.ID]; ok && prev != m {
		r.idErr("envelope id %q names both %s/%d and %s/%d", env.ID, prev.device, prev.seq, m.device, m.seq)
	}
	r.ids[env.ID] = m
	if r.msgIDs[m] == nil {
		r.msgIDs[m] = map[string]bool{}
	}
	r.msgIDs[m][env.ID] = true
}

func (r *upstreamResult) idErr(f string, a ...any) {
	if len(r.idErrs) < 10 {
		r.idErrs = append(r.idErrs, fmt.Sprintf(f, a...))
	}
}

// checkEnvelopeIDs: the json envelope's id is stable across resends, so
// every copy of a local record carries the same id, and distinct messages
// have distinct ids. storedOnce says each message was stored once locally
// (no MQTT connection was cut), so all its copies upstream must share one
// id; otherwise a device may have resent it and it may have two.
func checkEnvelopeIDs(t *testing.T, r upstreamResult, storedOnce bool) {
	t.Helper()
	for _, e := range r.idErrs {
		t.Error(e)
	}
	multi := 0
	for m, ids := range r.msgIDs {
		if len(ids) > 1 {
			multi++
			if multi <= 3 {
				t.Logf("message %s/%d was stored locally %d times (ids %v)", m.device, m.seq, len(ids), ids)
			}
		}
	}
	if multi > 0 && storedOnce {
		t.Errorf("%d messages reached the upstream under more than one envelope id", multi)
	}
}

// checkReport fails on loss, reordering, wrong keys and foreign records.
func checkReport(t *testing.T, rep verify.Report, extraOK bool) {
	t.Helper()
	bad := rep.Missing != 0 || rep.OutOfOrder != 0 || rep.KeyMismatch != 0 || rep.Foreign != 0 || rep.UnknownDevice != 0
	if bad || (!extraOK && rep.Extra != 0) {
		var b strings.Builder
		rep.WriteText(&b, 10)
		t.Errorf("upstream does not keep the ledger's promises:\n%s", b.String())
	}
}

// checkStreamsCLI reads the forwarder's lag through `weir streams --json`
// (the operator's view) once everything is upstream.
func checkStreamsCLI(t *testing.T, w *harness.Weir, target string) {
	t.Helper()
	out, errOut, code := harness.RunWeirFor(t, 20*time.Second, "", "streams", "--api", w.APIURL(), "--json")
	if code != 0 {
		t.Errorf("weir streams --json: exit %d: %s", code, errOut)
		return
	}
	fs, err := harness.ParseForwarders([]byte(out))
	if err != nil {
		t.Error(err)
		return
	}
	for _, f := range fs {
		if f.TargetStream == target {
			if f.LagRecords != 0 || f.Lost != 0 || f.Consumer != "forwarder:"+target {
				t.Errorf("weir streams --json after the drain: %+v", f)
			}
			return
		}
	}
	t.Errorf("weir streams --json lists no forwarder to %s:\n%s", target, out)
}

// deaggScript de-aggregates records with aws-kinesis-agg (checksums
// verified) and prints, per record, the user records' keys and data.
const deaggScript = `
const agg = require('aws-kinesis-agg');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const out = [];
  for (const r of JSON.parse(input)) {
    agg.deaggregateSync({partitionKey: r.key, data: r.data, sequenceNumber: r.seq}, true, (err, recs) => {
      if (err) { console.error('deaggregate: ' + err); process.exit(2); }
      out.push(recs.map(u => ({key: u.partitionKey, data: u.data})));
    });
  }
  process.stdout.write(JSON.stringify(out));
});
`

// checkWithNpmDeaggregator: the aggregates as kinesalite returns them
// decode the same with AWS's de-aggregator as with ours.
func checkWithNpmDeaggregator(t *testing.T, recs []verify.Record) {
	t.Helper()
	type nodeRec struct {
		Key  string `json:"key"`
		Data string `json:"data"`
		Seq  string `json:"seq,omitempty"`
	}
	in := make([]nodeRec, len(recs))
	for i, r := range recs {
		in[i] = nodeRec{Key: r.PartitionKey, Data: base64.StdEncoding.EncodeToString(r.Data), Seq: r.SequenceNum}
	}
	stdin, _ := json.Marshal(in)
	var out [][]nodeRec
	if err := json.Unmarshal(kinesalite.Node(t, deaggScript, stdin), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(recs) {
		t.Fatalf("aws-kinesis-agg returned %d records for %d aggregates", len(out), len(recs))
	}
	users := 0
	for i, r := range recs {
		ours, err := forwarder.DecodeAggregate(r.Data, r.PartitionKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(out[i]) != len(ours) {
			t.Fatalf("aggregate %s: aws-kinesis-agg finds %d user records, we find %d", r.SequenceNum, len(out[i]), len(ours))
		}
		for j, u := range out[i] {
			d, _ := base64.StdEncoding.DecodeString(u.Data)
			if u.Key != ours[j].PartitionKey || string(d) != string(ours[j].Data) {
				t.Fatalf("aggregate %s record %d: aws-kinesis-agg %q/%q, ours %q/%q", r.SequenceNum, j, u.Key, d, ours[j].PartitionKey, ours[j].Data)
			}
			// doc.go: an aggregate packs consecutive records of one key.
			if u.Key != r.PartitionKey {
				t.Errorf("aggregate %s under key %q holds a record of key %q", r.SequenceNum, r.PartitionKey, u.Key)
			}
			if _, err := payload.Decode(d); err != nil {
				t.Fatalf("aggregate %s record %d is no device payload: %v", r.SequenceNum, j, err)
			}
		}
		users += len(ours)
	}
	t.Logf("aws-kinesis-agg agrees on %d aggregates holding %d user records", len(recs), users)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
