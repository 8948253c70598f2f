package integration

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-gateway/weir/firmware-sim/verify"
	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/integration/harness"
	"github.com/weir-gateway/weir/integration/s3rver"
)

// TestS3SinkKill9: the real gateway archives its stream into s3rver
// (through a proxy that holds some answers back after the object is
// stored) and is killed with SIGKILL twice: while devices
// publish, and after, with a backlog. Objects the store took but the
// gateway never heard about are rewritten under the same name after the
// restart. In the end the bucket holds every record of the local stream
// exactly once, each shard's objects contiguous and in order, and so
// every acknowledged message, in order per device.
func TestS3SinkKill9(t *testing.T) {
	start := time.Now()
	store := s3rver.Start(t, "archive")
	// Stored, answered 1.5s later: a kill in between leaves an object the
	// checkpoint does not cover.
	proxy := newSlowStore(t, store.Endpoint, 0.3, 1500*time.Millisecond)
	const target = "s3://archive"
	w := harness.StartWeir(t, harness.Opts{
		Extra: fmt.Sprintf(`forwarders:
  - stream: telemetry
    kind: s3
    name: archive
    s3:
      bucket: archive
      endpoint: %s
      compression: zstd
      max_object_bytes: 64KiB
      max_object_age: 1s
`, strconv.Quote(proxy.URL)),
		Env: append(harness.AWSTestEnv(t.TempDir()), "AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER"),
	})

	// 300 messages a second over 4 shards: a second's worth is well under
	// max_object_bytes, so runs are cut by age while devices publish, and
	// longer ones (by size) from the backlog after a restart.
	cfg := fwdFleet(w, 13, fwdDevices, 60)
	cfg.Groups[0].Rate = 10
	cfg.MaxReconnectInterval = 500 * time.Millisecond
	run := harness.StartSimFleet(t, cfg)

	// Twice: the run after a held one is in the store, unacknowledged.
	for i := 1; i <= 2; i++ {
		select {
		case <-proxy.next: // one from before the restart
		default:
		}
		var shard string
		select {
		case shard = <-proxy.next:
		case <-time.After(30 * time.Second):
			t.Fatalf("kill %d: no run followed a held answer within 30s", i)
		}
		w.Kill9()
		t.Logf("kill %d after %v: %s had a run stored behind a held one", i, time.Since(start).Round(time.Millisecond), shard)
		w.Restart()
		proxy.mu.Lock()
		clear(proxy.released) // the next kill waits for a pair of the restarted gateway's
		proxy.mu.Unlock()
	}
	proxy.slow.Store(0)
	led, sum := run.Wait()
	t.Logf("fleet: generated %d, acked %d, failed %d, connections lost %d", sum.Generated, sum.Acked, sum.Failed, sum.ConnectionsLost)
	if sum.Acked < uint64(fwdDevices*60/2) {
		t.Fatalf("only %d of %d messages acknowledged", sum.Acked, fwdDevices*60)
	}

	var fs harness.ForwarderState
	var err error
	deadline := time.Now().Add(drainTimeout)
	for {
		fs, err = w.ForwarderTo(target)
		if err == nil && fs.LagRecords == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink did not drain within %v: %+v (%v)", drainTimeout, fs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fs.Lost != 0 || fs.State != "running" {
		t.Errorf("after the drain: %+v", fs)
	}
	w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objs, err := s3sink.ReadAll(ctx, s3rver.NewClient(store.Endpoint), "archive", "")
	if err != nil {
		t.Fatal(err)
	}
	local := harness.Dump(t, w.DataDir, "telemetry")
	archived := checkArchiveAgainstDump(t, objs, local)

	var occs []verify.Occurrence
	foreign := 0
	for _, r := range archived {
		id, err := verify.Decode(r.Data, verify.EnvelopeRaw)
		if err != nil {
			foreign++
			continue
		}
		occs = append(occs, verify.Occurrence{Device: id.Device, Seq: id.Seq, TS: id.TS,
			PartitionKey: r.Key, Shard: r.Shard, SequenceNum: strconv.FormatUint(r.Seq, 10)})
	}
	rep := verify.Check(led.Entries, occs, foreign, verify.Options{})
	// A device may publish a message again after a kill cut its
	// connection: those are two local records, archived once each.
	checkReport(t, rep, true)
	t.Logf("s3 kill9: acked %d, local records %d, %d objects, %d device resends; %d PUTs, %d answers held back; %v",
		sum.Acked, len(local), len(objs), rep.Duplicated, proxy.puts.Load(), proxy.slowed.Load(), time.Since(start).Round(time.Millisecond))
	// About 6s of publishing on 4 shards, runs cut at 1s: a few dozen
	// objects, not one per handful of records.
	if len(objs) > 120 {
		t.Errorf("%d objects for %d records: runs are cut before max_object_age", len(objs), len(local))
	}
	if proxy.slowed.Load() == 0 {
		t.Errorf("no answer was held back: the kills had nothing to cut")
	}
}

// slowStore is a reverse proxy in front of the store that holds back the
// answer to some PUTs after the store has taken them (the fault proxy's
// Slow applies to Kinesis calls only). When the answer that follows a
// held one on the same shard comes back from the store, it says so on
// next: the run after the held one is stored, unacknowledged — the
// moment to kill the gateway.
type slowStore struct {
	URL          string
	slow         atomic.Uint64 // probability in thousandths
	puts, slowed atomic.Int64
	next         chan string // shard

	mu       sync.Mutex
	released map[string]bool // shard -> a held answer went out
}

var objectShard = regexp.MustCompile(`-(shardId-[0-9]+)-[0-9]{20}-`)

func newSlowStore(t *testing.T, upstream string, prob float64, delay time.Duration) *slowStore {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	s := &slowStore{next: make(chan string, 1), released: map[string]bool{}}
	s.slow.Store(uint64(prob * 1000))
	rnd := rand.New(rand.NewPCG(11, 12))
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // requests a kill cuts
	rp.ModifyResponse = func(resp *http.Response) error {
		m := objectShard.FindStringSubmatch(resp.Request.URL.Path)
		if resp.Request.Method != http.MethodPut || m == nil || resp.StatusCode != http.StatusOK {
			return nil
		}
		shard := m[1]
		s.puts.Add(1)
		s.mu.Lock()
		hold := rnd.IntN(1000) < int(s.slow.Load())
		after := s.released[shard]
		s.released[shard] = false
		s.mu.Unlock()
		if after && !hold {
			select {
			case s.next <- shard:
			default:
			}
		}
		if hold {
			s.slowed.Add(1)
			select {
			case <-time.After(delay):
			case <-resp.Request.Context().Done():
			}
			s.mu.Lock()
			s.released[shard] = true
			s.mu.Unlock()
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// archivedRecord is one record read from the bucket.
type archivedRecord struct {
	Shard string
	Seq   uint64
	Key   string
	Data  []byte
}

// checkArchiveAgainstDump: every local record is in the bucket exactly
// once, with its key and data, and each shard's objects hold contiguous,
// non-overlapping runs (an object retried after a kill replaced its
// earlier copy under the same name rather than adding one). It returns
// the archived records in shard order.
func checkArchiveAgainstDump(t *testing.T, objs []s3sink.StoredObject, local []harness.Line) []archivedRecord {
	t.Helper()
	byShard := map[string][]s3sink.StoredObject{}
	for _, o := range objs {
		byShard[o.Metadata["shard"]] = append(byShard[o.Metadata["shard"]], o)
	}
	want := map[string][]harness.Line{}
	for _, l := range local {
		want[l.Shard] = append(want[l.Shard], l)
	}
	var out []archivedRecord
	for shard, lines := range want {
		list := byShard[shard]
		slices.SortFunc(list, func(a, b s3sink.StoredObject) int { return int(a.Records[0].Seq) - int(b.Records[0].Seq) })
		i := 0
		for _, o := range list {
			for _, r := range o.Records {
				if i >= len(lines) {
					t.Fatalf("shard %s: object %s holds seq %d, past the %d local records", shard, o.Key, r.Seq, len(lines))
				}
				l := lines[i]
				if r.Seq != l.Seq || r.Key != l.Key || string(r.Data) != string(l.Data) {
					t.Fatalf("shard %s: object %s has seq %d (key %s) where local seq %d (key %s) comes next: gap, overlap or damage",
						shard, o.Key, r.Seq, r.Key, l.Seq, l.Key)
				}
				out = append(out, archivedRecord{Shard: shard, Seq: r.Seq, Key: r.Key, Data: r.Data})
				i++
			}
		}
		if i != len(lines) {
			t.Errorf("shard %s: %d of %d local records archived", shard, i, len(lines))
		}
	}
	for shard := range byShard {
		if want[shard] == nil {
			t.Errorf("objects of shard %s, which the local stream does not have", shard)
		}
	}
	return out
}
