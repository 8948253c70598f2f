package integration

// Power-cut tests (issue 7). A kill -9 cannot tell a gateway that fsyncs
// from one that does not: the page cache outlives the process. These tests
// put the gateway's data directory on lazyfs (integration/lazyfs), which
// forgets every write, create, rename and unlink not made durable by an
// fsync, and cut the power under it: kill -9, wait for the process to die,
// undo everything not durable, restart on what survived. Devices are the
// harness fleet (a fresh paho client per connection, no auto-reconnect, so
// paho never completes a resent publish's token without a real PUBACK: a
// ledger entry is a real acknowledgement).
//
// What they prove:
//
//   - fsync: always: every acknowledged QoS 1 message survives, in each
//     device's order, with cuts landing during segment rolls (8 KiB
//     segments: every shard rolls many times a second), retention
//     deletions (right after retention logged deleting one shard's
//     segments, while it goes on with the others), reshards (a moment
//     after a SplitShard/MergeShards/UpdateShardCount request went out)
//     and checkpoint commits (a moment after one was acknowledged, while
//     the next is under way), and in a loop of cuts mixing them. The
//     gateway's own directories survive; the log opens; an iterator handed
//     out before the cut still works; a new device's publish is
//     acknowledged and readable; afterwards the forwarder delivers every
//     stored record upstream (kinesalite) in per-key order.
//   - fsync: interval: nothing is reordered, corrupted or invented, and
//     loss is bounded. A record is written before its PUBACK and made
//     durable by the first background fdatasync that starts after the
//     write; those start every interval (a sync that overruns delays the
//     next one), so a record acknowledged at A is durable by
//     A + max(interval, fsync) + fsync, where fsync is one fdatasync's
//     duration (segment rolls sync too, which only shortens this). A cut
//     at C therefore loses only records acknowledged after
//     C - (interval + fsync) when fsync <= interval. The test allows
//     C - (interval + 500ms): the 500ms stands for the fdatasync, a late
//     ticker and scheduling on a loaded two-core CI box, not for the
//     gateway; the log reports how far back loss really reached.
//   - after every cut, with the gateway back: a consumer's checkpoints are
//     exactly its last acknowledged commit or the one in flight at the
//     cut; its and the forwarder's positions parse and never point past
//     a shard's last stored record (data that is gone); the shard map
//     tiles the hash space with every parent present and closed before
//     its children start, and no acknowledged reshard is undone.
//   - an encrypted stream (StartStreamEncryption before the devices start,
//     the key outside the cut disk) keeps the same promises, its consumer
//     and forwarder read the plain text, and no segment holds a record's
//     data or partition key in clear.
//   - the harness can fail: with fsync: interval and a 10s interval, a
//     kill -9 alone loses nothing, but a power cut loses acknowledged
//     records and the fsync: always checker reports them.
//
// Environment: WEIR_POWERCUT_LOOPS, the cuts of the loop scenario
// (default 4).

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"io/fs"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/integration/harness"
	"github.com/weir-gateway/weir/integration/kinesalite"
	"github.com/weir-gateway/weir/shards"
)

const (
	pcStream   = "telemetry"
	pcConsumer = "powercut-consumer"
	pcProbe    = "probe-"
	// fsyncAllowance is what the interval-mode bound allows for one
	// fdatasync plus a late ticker on a noisy two-core box.
	fsyncAllowance = 500 * time.Millisecond
	// retentionSlack is how long after a record's arrival its PUBACK may
	// come and it still counts as old enough for retention to delete.
	retentionSlack = time.Second
)

// pcScenario is one gateway on a lazyfs disk, cut several times under load.
type pcScenario struct {
	name     string
	cfg      harness.PowerCutConfig
	cuts     int
	devices  int
	rate     float64       // messages per second per device
	load     time.Duration // load before each cut, plus up to half as much at random
	reshard  bool          // SplitShard/MergeShards/UpdateShardCount in a loop
	consumer bool          // a consumer committing checkpoints in a loop
	// encrypt: StartStreamEncryption before the devices start, with the
	// key on another disk than the data (as ENCRYPTION.md asks); at the
	// end no segment may hold a record's plain text.
	encrypt bool
	// lossBound (fsync: interval) is how long before a cut acknowledged
	// records may be lost; 0 means none may.
	lossBound time.Duration
	// at says what cut i lands in, cycling: "random" (any moment of the
	// load), "retention" (right after retention logged deleting a shard's
	// segments, while it goes on with the next shards), "reuse" (0-300ms
	// after such a deletion, while rolls rewrite the freed files), "reshard" (a
	// moment after a reshard request went out), "commit" (a moment after
	// a checkpoint commit was acknowledged, while the next is under way).
	at []string
}

// pcResult is what a scenario did, for the log and the report.
type pcResult struct {
	cuts                                     int
	acked, lost, lostInWindow, retentionGone int
	bytesUndone, entriesUndone               uint64
	reshards, commits, probes, upstream      int
	maxLostAge, downtime                     time.Duration
	repairs                                  int
	tookCuts, tookDrain, tookCheck           time.Duration // phases: start+load+cuts, final load+forwarder drain+stop, dump+checks
}

func (r pcResult) String() string {
	return fmt.Sprintf("cuts=%d acked=%d lost=%d lost_in_window=%d (max %v before the cut) retention_deleted=%d undone: %d bytes, %d entries; reshards=%d checkpoint_commits=%d probes=%d upstream_records=%d tail_repairs=%d mean_downtime=%v took: cuts %v, drain %v, checks %v",
		r.cuts, r.acked, r.lost, r.lostInWindow, r.maxLostAge, r.retentionGone, r.bytesUndone, r.entriesUndone,
		r.reshards, r.commits, r.probes, r.upstream, r.repairs, r.downtime,
		r.tookCuts.Round(time.Millisecond), r.tookDrain.Round(time.Millisecond), r.tookCheck.Round(time.Millisecond))
}

// TestPowerCutAlways: fsync: always loses nothing acknowledged, whatever
// the cut lands in.
func TestPowerCutAlways(t *testing.T) {
	ep, _ := kinesalite.Start(t)
	loops := envInt(t, "WEIR_POWERCUT_LOOPS", 4)
	base := pcScenario{cuts: 3, devices: 40, rate: 60, load: time.Second, cfg: harness.PowerCutConfig{Fsync: "always"}}
	scenarios := []pcScenario{}
	add := func(name string, f func(*pcScenario)) {
		s := base
		s.name = name
		f(&s)
		scenarios = append(scenarios, s)
	}
	// 8 KiB segments hold ~30 records: each shard rolls several times a
	// second, and the preparer creates a spare as often.
	add("segment-roll", func(s *pcScenario) { s.cfg.SegmentSize = "8KiB"; s.at = []string{"random"} })
	// Retention deletes whole sealed segments older than 2s; with 16 KiB
	// segments it deletes some every second (its timer).
	add("retention", func(s *pcScenario) {
		s.cfg.SegmentSize, s.cfg.Retention, s.at = "16KiB", 2*time.Second, []string{"retention"}
	})
	// Storage v2: the files retention frees become the next segments, and
	// every roll writes a footer. With 16 KiB segments each shard rolls
	// several times a second, so a cut up to 300ms after a deletion lands
	// while a freed file is rewritten as a segment, while footers are
	// written, or between the two renames of a reuse.
	add("segment-reuse", func(s *pcScenario) {
		s.cfg.SegmentSize, s.cfg.Retention, s.at = "16KiB", 2*time.Second, []string{"reuse", "reuse", "random"}
	})
	add("reshard", func(s *pcScenario) { s.reshard, s.at = true, []string{"reshard"} })
	add("checkpoint-commit", func(s *pcScenario) { s.consumer, s.at = true, []string{"commit"} })
	// An encrypted stream: the same promises, and no plain text on disk.
	add("encrypted", func(s *pcScenario) {
		s.cuts, s.cfg.SegmentSize, s.encrypt, s.consumer = 1, "16KiB", true, true
		s.at = []string{"commit"}
	})
	add("loop", func(s *pcScenario) {
		s.cuts = loops
		s.cfg.SegmentSize = "16KiB"
		s.reshard, s.consumer = true, true
		s.load = 700 * time.Millisecond
		s.at = []string{"reshard", "commit", "random"}
	})
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sc.cfg.Forward = "pc-" + sc.name
			sc.cfg.ForwardEndpoint = ep
			r := runPowerCut(t, sc)
			t.Logf("%s: %s", sc.name, r)
		})
	}
}

// TestPowerCutIntervalLossBounded: with fsync: interval a cut loses at
// most what was acknowledged in the last interval + one fdatasync, and
// never reorders, corrupts or invents a record; positions and the shard
// map survive as with fsync: always. 50ms is the bound under test; 1s
// makes the unsynced window wide enough that a checkpoint committed just
// before the cut (the cut is timed right after one) surely names records
// the cut takes away, so "positions never point past data that is gone"
// is tested every run, not by luck.
func TestPowerCutIntervalLossBounded(t *testing.T) {
	ep, _ := kinesalite.Start(t)
	for _, c := range []struct {
		interval time.Duration
		segment  string // large enough that rolls (which sync) do not shorten the unsynced window
	}{{50 * time.Millisecond, "64KiB"}, {time.Second, "4MiB"}} {
		interval := c.interval
		sc := pcScenario{name: "interval-" + interval.String(), cuts: 3, devices: 40, rate: 60, load: time.Second, consumer: true,
			lossBound: interval + fsyncAllowance, at: []string{"commit"},
			cfg: harness.PowerCutConfig{Fsync: "interval", Interval: interval, SegmentSize: c.segment,
				Forward: "pc-interval", ForwardEndpoint: ep}}
		t.Run(sc.name, func(t *testing.T) {
			r := runPowerCut(t, sc)
			t.Logf("interval %v, allowed loss window %v before each cut: %s", interval, sc.lossBound, r)
		})
	}
}

// TestPowerCutSanityLongIntervalLosesAcked shows that the harness can
// fail: with fsync: interval and a 10s interval (nothing synced during
// the test, and 16 MiB segments so no roll syncs either), a kill -9 alone
// loses nothing — the page cache survives it — but a power cut loses
// acknowledged records, and the fsync: always checker reports them.
func TestPowerCutSanityLongIntervalLosesAcked(t *testing.T) {
	disk := harness.MountDisk(t)
	cfg := harness.PowerCutConfig{Fsync: "interval", Interval: 10 * time.Second, SegmentSize: "16MiB"}
	w := harness.StartWeir(t, cfg.Opts(disk.DataDir()))
	f := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: 40, Rate: 60, Seed: 7})

	// A kill -9 without a power cut: nothing is lost, fsync or not.
	f.WaitAcked(f.Acked()+500, 30*time.Second)
	w.Kill9()
	killed := f.Snapshot()
	rep := harness.CheckDurability(killed, harness.Dump(t, w.DataDir, pcStream), harness.LossRules{})
	t.Logf("after kill -9 only: %s", rep)
	if rep.Violations() != 0 {
		t.Fatalf("a kill -9 alone lost or damaged records with fsync: interval: %s\n  %s", rep, strings.Join(rep.Problems, "\n  "))
	}

	// The same after a power cut. `weir dump` above opened the log, which
	// synced it, so only what is acknowledged from here on is at risk.
	// Syncing every directory (as sync(1) would) keeps this test about
	// unsynced records whether or not the gateway makes the directories it
	// creates durable: the other tests check that.
	disk.SyncTree(t, w.DataDir)
	w.Restart()
	f.WaitAcked(f.Acked()+1000, 30*time.Second)
	cut := disk.PowerCut(w)
	promised := f.Snapshot()
	if gone := harness.MissingAfterCut(w.DataDir, pcStream); len(gone) > 0 {
		t.Fatalf("the power cut removed what the gateway created long before (a directory never fsynced): %v", gone)
	}
	rep = harness.CheckDurability(promised, harness.Dump(t, w.DataDir, pcStream), harness.LossRules{})
	t.Logf("after a power cut with a 10s interval: %s; lazyfs undid %d bytes, %d entries", rep, cut.Undone.BytesUndone, cut.Undone.EntriesUndone)
	if rep.Lost == 0 {
		t.Errorf("the always-mode checker found no loss after a power cut with a 10s fsync interval: the cut did not drop unsynced data, so the power-cut tests cannot fail (%s)", rep)
	}
	if rep.Lost > len(promised.Entries)-len(killed.Entries) {
		t.Errorf("lost %d records, more than the %d acknowledged since the log was last synced", rep.Lost, len(promised.Entries)-len(killed.Entries))
	}
	if n := rep.Violations() - rep.Lost; n != 0 {
		t.Errorf("besides loss, %d records reordered, corrupted or invented (interval mode must not do that): %s\n  %s", n, rep, strings.Join(rep.Problems, "\n  "))
	}
	if cut.Undone.BytesUndone == 0 {
		t.Errorf("the power cut undid no bytes")
	}
	w.Restart()
	f.Stop()
	w.Stop()
}

// runPowerCut runs one scenario and fails t on any broken promise.
func runPowerCut(t *testing.T, sc pcScenario) pcResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	began := time.Now()

	disk := harness.MountDisk(t)
	if sc.cfg.Forward != "" {
		sc.cfg.Forward = upstreamName(sc.cfg.Forward, rng)
		if err := kinesalite.CreateStream(ctx, kinesalite.NewClient(sc.cfg.ForwardEndpoint), sc.cfg.Forward, 2); err != nil {
			t.Fatal(err)
		}
	}
	if sc.encrypt {
		sc.cfg.KeysDir = writePowerCutKey(t)
	}
	w := harness.StartWeir(t, sc.cfg.Opts(disk.DataDir()))
	api := harness.NewGatewayAPI(w)
	if sc.encrypt {
		if _, err := api.Kinesis.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String(pcStream),
			EncryptionType: types.EncryptionTypeKms, KeyId: aws.String(pcKeyID)}); err != nil {
			t.Fatal(err)
		}
	}
	dump := func() []harness.Line {
		if sc.encrypt {
			return harness.DumpWithKeys(t, w.DataDir, sc.cfg.KeysDir, pcStream)
		}
		return harness.Dump(t, w.DataDir, pcStream)
	}
	f := harness.StartFleet(t, harness.FleetOpts{Broker: w.MQTTURL(), Devices: sc.devices, Rate: sc.rate, Seed: seed})

	var acts []*harness.Activity
	var rs *resharder
	var cc *ckptConsumer
	if sc.reshard {
		rs = &resharder{api: api, rng: rand.New(rand.NewPCG(seed, 2)), started: make(chan struct{}, 1)}
		acts = append(acts, harness.StartActivity(t, "reshard", api, 100*time.Millisecond, rs.step))
	}
	if sc.consumer {
		cc = newCkptConsumer(t, ctx, api)
		acts = append(acts, harness.StartActivity(t, "checkpoint", api, 0, cc.step))
	}

	var res pcResult
	var windows []harness.LossWindow
	for i := 1; i <= sc.cuts; i++ {
		f.WaitAcked(f.Acked()+uint64(5*sc.devices), 30*time.Second)
		time.Sleep(sc.load + time.Duration(rng.Int64N(int64(sc.load/2)+1)))
		iter := shardIterator(t, ctx, api)
		point := "random"
		if len(sc.at) > 0 {
			point = sc.at[(i-1)%len(sc.at)]
		}
		waitPoint(t, point, w, rs, cc, rng)

		cut := disk.PowerCut(w)
		promised := f.Snapshot()
		for _, a := range acts {
			a.WaitParked(t)
		}
		res.cuts++
		res.bytesUndone += cut.Undone.BytesUndone
		res.entriesUndone += cut.Undone.EntriesUndone
		t.Logf("cut %d (%s): %d acked so far; lazyfs undid %d bytes and %d directory entries (%d writes, %d fsyncs, %d dir fsyncs since the previous cut)",
			i, point, len(promised.Entries), cut.Undone.BytesUndone, cut.Undone.EntriesUndone, cut.Undone.Writes, cut.Undone.Syncs, cut.Undone.DirSyncs)
		if gone := harness.MissingAfterCut(w.DataDir, pcStream); len(gone) > 0 {
			t.Fatalf("cut %d: the power cut removed what the gateway had created long before, so every record it acknowledged is gone (a directory it never fsynced):\n  %s",
				i, strings.Join(gone, "\n  "))
		}
		if sc.lossBound > 0 {
			// Up to the restart: an ack the dead gateway sent may be
			// recorded by its device a little after the process died.
			windows = append(windows, harness.LossWindow{From: cut.At.Add(-sc.lossBound), To: time.Now(), Cut: cut.At})
		}
		if sc.cfg.Retention > 0 {
			// Retention deletes on: check what this cut left before the
			// restarted gateway deletes more.
			rules := harness.LossRules{RetentionBefore: cut.Dead.Add(-sc.cfg.Retention + retentionSlack), ProbeKeyPrefix: pcProbe, LossWindows: windows}
			rep := harness.CheckDurability(promised, dump(), rules)
			t.Logf("cut %d: %s", i, rep)
			requireDurable(t, fmt.Sprintf("cut %d", i), rep)
		}

		restartAt := time.Now()
		w.Restart()
		res.downtime += time.Since(cut.At)
		checkAfterCut(t, ctx, api, w, sc, i, iter, rs, cc)
		res.probes++
		t.Logf("cut %d: gateway back after %v", i, time.Since(restartAt))
		for _, a := range acts {
			a.Resume()
		}
	}
	res.downtime /= time.Duration(max(res.cuts, 1))
	res.tookCuts = time.Since(began)
	drainBegan := time.Now()

	// After the last restart the gateway must take data again, then
	// forward all of it.
	f.WaitAcked(f.Acked()+uint64(10*sc.devices), 30*time.Second)
	for _, a := range acts {
		a.Stop()
		if n := a.Errors.Load(); n > 0 {
			t.Errorf("activity %s: the gateway refused %d steps while it was up: %v", a.Name, n, a.ErrorSample())
		} else if n := a.Transient.Load(); n > 0 {
			t.Logf("activity %s: %d steps failed in transport while the gateway was up: %v", a.Name, n, a.ErrorSample())
		}
		if a.Steps.Load() == 0 {
			t.Errorf("activity %s: no step succeeded", a.Name)
		}
	}
	if rs != nil {
		res.reshards = rs.ops()
	}
	if cc != nil {
		res.commits = cc.commitCount()
	}
	st := f.Stop()
	t.Logf("fleet: %+v", st)
	if sc.cfg.Forward != "" {
		// A watermark already reported past lost data never catches up:
		// do not wait long for it.
		wait := 60 * time.Second
		if t.Failed() {
			wait = 5 * time.Second
		}
		if sc.cfg.Fsync == "interval" {
			// Readers (the forwarder too) see a record only once it is
			// synced: let the last interval's records become visible
			// before asking whether the forwarder has caught up.
			time.Sleep(sc.cfg.Interval + 200*time.Millisecond)
		}
		waitForwarded(t, ctx, api, sc.cfg.Forward, wait)
	}
	w.Stop()
	stoppedAt := time.Now()
	res.repairs = strings.Count(w.Log(), "repaired torn tail")
	res.tookDrain = time.Since(drainBegan)

	dumped := dump()
	if sc.encrypt {
		requireNoPlaintext(t, w.DataDir, dumped)
	}
	rules := harness.LossRules{LossWindows: windows, ProbeKeyPrefix: pcProbe}
	if sc.cfg.Retention > 0 {
		rules.RetentionBefore = stoppedAt.Add(-sc.cfg.Retention + retentionSlack)
	}
	rep := harness.CheckDurability(f.Ledger(), dumped, rules)
	t.Logf("final: %s", rep)
	requireDurable(t, "final", rep)
	// Every probe was acknowledged and read back; retention may have
	// deleted the older ones since.
	if rep.Probes > res.probes || (sc.cfg.Retention == 0 && rep.Probes != res.probes) {
		t.Errorf("%d probes stored, %d acknowledged", rep.Probes, res.probes)
	}
	res.acked, res.lost, res.lostInWindow, res.retentionGone, res.maxLostAge = rep.Acked, rep.Lost, rep.LostInWindow, rep.RetentionDeleted, rep.MaxLostAge
	if sc.lossBound > 0 && rep.MaxLostAge > sc.lossBound {
		t.Errorf("a record acknowledged %v before a cut was lost; the bound is %v", rep.MaxLostAge, sc.lossBound)
	}

	if sc.cfg.Forward != "" {
		up, err := kinesalite.ReadAll(ctx, kinesalite.NewClient(sc.cfg.ForwardEndpoint), sc.cfg.Forward)
		if err != nil {
			t.Fatal(err)
		}
		ur := harness.CheckUpstream(dumped, up)
		res.upstream = ur.Upstream
		if ur.Missing+ur.OutOfOrder > 0 {
			t.Errorf("upstream: %d of %d stored records never forwarded, %d out of key order (upstream holds %d):\n  %s",
				ur.Missing, len(dumped), ur.OutOfOrder, ur.Upstream, strings.Join(ur.Problems, "\n  "))
		}
	}
	res.tookCheck = time.Since(stoppedAt)
	return res
}

func requireDurable(t *testing.T, when string, rep harness.DurabilityReport) {
	t.Helper()
	if rep.Acked == 0 {
		t.Fatalf("%s: nothing was acknowledged", when)
	}
	if rep.Violations() > 0 {
		t.Fatalf("%s: the gateway broke its promises (%s):\n  %s", when, rep, strings.Join(rep.Problems, "\n  "))
	}
}

var upstreamRE = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func upstreamName(base string, rng *rand.Rand) string {
	return upstreamRE.ReplaceAllString(fmt.Sprintf("%s-%d", base, rng.IntN(1e9)), "-")
}

// checkAfterCut looks at the restarted gateway before any activity
// resumes: shard map, positions, an iterator from before the cut, and a
// publish that must be acknowledged and readable.
func checkAfterCut(t *testing.T, ctx context.Context, api *harness.GatewayAPI, w *harness.Weir, sc pcScenario, cut int, iter string, rs *resharder, cc *ckptConsumer) {
	t.Helper()
	list, err := api.ListShards(ctx, pcStream)
	if err != nil {
		t.Fatalf("cut %d: ListShards after restart: %v", cut, err)
	}
	if p := harness.ShardMapProblems(list, sc.cfg.Retention > 0); len(p) > 0 {
		t.Errorf("cut %d: shard map after the cut:\n  %s", cut, strings.Join(p, "\n  "))
	}
	if rs != nil {
		maxID := -1
		for _, s := range list {
			maxID = max(maxID, harness.ShardNumber(aws.ToString(s.ShardId)))
		}
		if acked := rs.ackedMax(); maxID < acked {
			t.Errorf("cut %d: the shard map went back past an acknowledged reshard: newest shard is %d, an acknowledged reshard had created %d", cut, maxID, acked)
		}
	}
	if cc != nil {
		cps, err := api.GetCheckpoints(ctx, pcStream, pcConsumer)
		if err != nil {
			t.Errorf("cut %d: GetCheckpoints of %s (registered before the first cut): %v", cut, pcConsumer, err)
		} else {
			for _, p := range append(harness.PositionProblems(pcConsumer, cps, list), cc.problems(cps)...) {
				t.Errorf("cut %d: %s", cut, p)
			}
		}
	}
	if sc.cfg.Forward != "" {
		who := "forwarder:" + sc.cfg.Forward
		cps, err := api.GetCheckpoints(ctx, pcStream, who)
		if err != nil {
			t.Errorf("cut %d: GetCheckpoints of %s: %v", cut, who, err)
		}
		for _, p := range harness.PositionProblems(who, cps, list) {
			t.Errorf("cut %d: %s", cut, p)
		}
	}
	if _, err := api.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter), Limit: aws.Int32(1)}); err != nil {
		t.Errorf("cut %d: a shard iterator handed out before the cut is refused after the restart (API.md: iterators survive a restart): %v", cut, err)
	}
	probe(t, ctx, api, w, fmt.Sprintf("%s%d", pcProbe, cut))
}

// waitPoint returns when a cut should land in what point names.
func waitPoint(t *testing.T, point string, w *harness.Weir, rs *resharder, cc *ckptConsumer, rng *rand.Rand) {
	t.Helper()
	switch point {
	case "random":
	case "retention":
		// Retention logs each shard's deletion when it is done, then goes
		// on with the next shard.
		n := strings.Count(w.Log(), "deleted segments")
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(w.Log(), "deleted segments") == n {
			if time.Now().After(deadline) {
				t.Fatal("retention deleted nothing within 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	case "reuse":
		waitPoint(t, "retention", w, rs, cc, rng)
		time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
	case "reshard":
		rs.waitStarted(t)
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
	case "commit":
		// Right after an acknowledged commit, with the next one under way;
		// with fsync: interval the commit just made names records that the
		// next background fdatasync has probably not reached.
		cc.waitCommit(t)
		time.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
	default:
		t.Fatalf("unknown cut point %q", point)
	}
}

// shardIterator hands out a TRIM_HORIZON iterator on the first open shard.
func shardIterator(t *testing.T, ctx context.Context, api *harness.GatewayAPI) string {
	t.Helper()
	list, err := api.ListShards(ctx, pcStream)
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	for _, s := range list {
		if s.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		out, err := api.Kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(pcStream),
			ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		return aws.ToString(out.ShardIterator)
	}
	t.Fatal("no open shard")
	return ""
}

// probe publishes one QoS 1 message as a new device and reads it back
// through the API: the restarted gateway stores, acknowledges and serves.
func probe(t *testing.T, ctx context.Context, api *harness.GatewayAPI, w *harness.Weir, key string) {
	t.Helper()
	list, err := api.ListShards(ctx, pcStream)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	h := shards.HashOf(key).Big()
	var shardID *string
	for _, s := range list {
		lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		if s.SequenceNumberRange.EndingSequenceNumber == nil && lo.Cmp(h) <= 0 && h.Cmp(hi) <= 0 {
			shardID = s.ShardId
		}
	}
	if shardID == nil {
		t.Fatalf("probe: no open shard holds key %s", key)
	}
	it, err := api.Kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(pcStream),
		ShardId: shardID, ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		t.Fatalf("probe: GetShardIterator: %v", err)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(w.MQTTURL()).SetClientID(key).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("probe: connect after restart: %v", tok.Error())
	}
	defer c.Disconnect(50)
	body := "probe " + key
	if tok := c.Publish("devices/"+key+"/telemetry", 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("probe: publish after restart not acknowledged: %v", tok.Error())
	}
	next := it.ShardIterator
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := api.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next, Limit: aws.Int32(10000)})
		if err != nil {
			t.Fatalf("probe: GetRecords: %v", err)
		}
		for _, r := range out.Records {
			if aws.ToString(r.PartitionKey) == key && string(r.Data) == body {
				return
			}
		}
		next = out.NextShardIterator
		if len(out.Records) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("probe: %s acknowledged but not readable through the API within 10s", key)
}

// seqLess compares two sequence numbers of one shard.
func seqLess(t *testing.T, a, b string) bool {
	t.Helper()
	_, x, err := shards.DecodeSeq(a)
	if err != nil {
		t.Fatalf("sequence number %q: %v", a, err)
	}
	_, y, err := shards.DecodeSeq(b)
	if err != nil {
		t.Fatalf("sequence number %q: %v", b, err)
	}
	return x < y
}

// waitForwarded waits until the forwarder's watermark reaches the last
// record of every shard.
func waitForwarded(t *testing.T, ctx context.Context, api *harness.GatewayAPI, target string, wait time.Duration) {
	t.Helper()
	who := "forwarder:" + target
	deadline := time.Now().Add(wait)
	for {
		cps, err := api.GetCheckpoints(ctx, pcStream, who)
		var behind []string
		for _, c := range cps {
			// The watermark may pass the shard's last record: it moves
			// over the other shards' records between the shard's numbers.
			if c.LastSequenceNumber != "" && (c.SequenceNumber == "" || seqLess(t, c.SequenceNumber, c.LastSequenceNumber)) {
				behind = append(behind, fmt.Sprintf("%s at %q of %s", c.ShardId, c.SequenceNumber, c.LastSequenceNumber))
			}
		}
		if err == nil && len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("forwarder %s did not catch up within %v (err %v): %v", target, wait, err, behind)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// resharder splits, merges and rescales the stream, one operation per
// step, keeping 2 to 6 open shards.
type resharder struct {
	api     *harness.GatewayAPI
	rng     *rand.Rand
	started chan struct{} // a reshard request is about to go out
	mu      sync.Mutex
	acked   int // newest shard number seen after an acknowledged reshard
	n       int
}

// waitStarted waits until the next reshard request goes out.
func (r *resharder) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-r.started:
	default:
	}
	select {
	case <-r.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no reshard started within 10s")
	}
}

func (r *resharder) ackedMax() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acked
}

func (r *resharder) ops() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *resharder) step(ctx context.Context) error {
	list, err := r.api.ListShards(ctx, pcStream)
	if err != nil {
		return err
	}
	type open struct {
		id     string
		lo, hi *big.Int
	}
	var opens []open
	for _, s := range list {
		if s.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		opens = append(opens, open{aws.ToString(s.ShardId), lo, hi})
	}
	if len(opens) == 0 {
		return fmt.Errorf("no open shard")
	}
	sort.Slice(opens, func(i, j int) bool { return opens[i].lo.Cmp(opens[j].lo) < 0 }) // neighbours side by side
	n := len(opens)
	s := aws.String(pcStream)
	select {
	case r.started <- struct{}{}:
	default:
	}
	switch k := r.rng.IntN(3); {
	case k == 0 && n < 6 || n <= 2:
		o := opens[r.rng.IntN(n)]
		mid := new(big.Int).Add(o.lo, new(big.Int).Rsh(new(big.Int).Sub(o.hi, o.lo), 1))
		mid.Add(mid, big.NewInt(1))
		_, err = r.api.Kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: s, ShardToSplit: aws.String(o.id), NewStartingHashKey: aws.String(mid.String())})
	case k == 1 && n > 2 || n >= 6:
		i := r.rng.IntN(n - 1)
		_, err = r.api.Kinesis.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: s, ShardToMerge: aws.String(opens[i].id), AdjacentShardToMerge: aws.String(opens[i+1].id)})
	default:
		lo, hi := max(2, (n+1)/2), min(6, 2*n)
		target := lo + r.rng.IntN(hi-lo+1)
		if target == n {
			target = hi
			if hi == n {
				target = lo
			}
		}
		_, err = r.api.Kinesis.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: s, TargetShardCount: aws.Int32(int32(target)), ScalingType: types.ScalingTypeUniformScaling})
	}
	if err != nil {
		return err
	}
	after, err := r.api.ListShards(ctx, pcStream)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if err == nil {
		for _, s := range after {
			r.acked = max(r.acked, harness.ShardNumber(aws.ToString(s.ShardId)))
		}
	}
	return nil
}

// ckptConsumer commits a shard's last record as its checkpoint, one shard
// per step, round robin, remembering what was acknowledged and what was
// in flight; Committed signals each acknowledged commit so a cut can be
// timed right after one, while the next is under way.
type ckptConsumer struct {
	api       *harness.GatewayAPI
	committed chan struct{}
	mu        sync.Mutex
	acked     map[string]string   // shard -> last acknowledged commit
	pending   map[string][]string // shard -> commits sent since, outcome unknown
	commits   int
	next      int
}

func newCkptConsumer(t *testing.T, ctx context.Context, api *harness.GatewayAPI) *ckptConsumer {
	t.Helper()
	arn := "arn:aws:kinesis:local:000000000000:stream/" + pcStream
	if _, err := api.Kinesis.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String(pcConsumer)}); err != nil {
		t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	return &ckptConsumer{api: api, committed: make(chan struct{}, 1), acked: map[string]string{}, pending: map[string][]string{}}
}

func (c *ckptConsumer) commitCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits
}

// waitCommit waits for the next acknowledged commit.
func (c *ckptConsumer) waitCommit(t *testing.T) {
	t.Helper()
	select {
	case <-c.committed: // an old one
	default:
	}
	select {
	case <-c.committed:
	case <-time.After(10 * time.Second):
		t.Fatal("no checkpoint commit acknowledged within 10s")
	}
}

func (c *ckptConsumer) step(ctx context.Context) error {
	cps, err := c.api.GetCheckpoints(ctx, pcStream, pcConsumer)
	if err != nil {
		return err
	}
	var live []harness.ShardCheckpoint
	for _, cp := range cps {
		if cp.LastSequenceNumber != "" {
			live = append(live, cp)
		}
	}
	if len(live) == 0 {
		return nil
	}
	c.mu.Lock()
	cp := live[c.next%len(live)]
	c.next++
	c.pending[cp.ShardId] = append(c.pending[cp.ShardId], cp.LastSequenceNumber)
	c.mu.Unlock()
	if err := c.api.CommitCheckpoint(ctx, pcStream, pcConsumer, cp.ShardId, cp.LastSequenceNumber); err != nil {
		return err
	}
	c.mu.Lock()
	c.acked[cp.ShardId] = cp.LastSequenceNumber
	c.pending[cp.ShardId] = nil
	c.commits++
	c.mu.Unlock()
	select {
	case c.committed <- struct{}{}:
	default:
	}
	return nil
}

// problems compares the checkpoints after a cut with the commits: each is
// the last acknowledged one, or one in flight at the cut (its fsync may
// have finished before the answer was lost); never older, never another.
func (c *ckptConsumer) problems(cps []harness.ShardCheckpoint) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, cp := range cps {
		ok := cp.SequenceNumber == c.acked[cp.ShardId]
		for _, p := range c.pending[cp.ShardId] {
			ok = ok || cp.SequenceNumber == p
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s: %s: checkpoint %q after the cut; the last acknowledged commit was %q (in flight: %v)",
				pcConsumer, cp.ShardId, cp.SequenceNumber, c.acked[cp.ShardId], c.pending[cp.ShardId]))
		}
	}
	return out
}

// pcKeyID is the KeyId of the encrypted power-cut scenario.
const pcKeyID = "alias/powercut"

// writePowerCutKey makes a keys_dir (off the lazyfs disk: keys live on
// another medium than the data) holding pcKeyID's key.
func writePowerCutKey(t *testing.T) string {
	dir := t.TempDir()
	key := make([]byte, shards.KeySize)
	if _, err := crand.Read(key); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(pcKeyID))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireNoPlaintext greps every file of the stream's directory for the
// data and partition keys of the records read back: an encrypted stream
// must hold none of them in clear. Partition keys (one per device) cover
// every record; the data of up to 500 records is checked whole.
func requireNoPlaintext(t *testing.T, dataDir string, lines []harness.Line) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("no records to look for")
	}
	var disk []byte
	files := 0
	err := filepath.WalkDir(filepath.Join(dataDir, "streams", pcStream), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files++
		disk = append(append(disk, b...), 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string]bool{}
	step := max(1, len(lines)/500)
	for i, l := range lines {
		// Keys are dev-00001 or probe-N: too long to turn up by chance
		// in a few MiB of cipher text.
		needles[l.Key] = true
		if i%step == 0 {
			needles[string(l.Data)] = true
		}
	}
	for n := range needles {
		if bytes.Contains(disk, []byte(n)) {
			t.Fatalf("plain text of an encrypted record found on disk: %q", truncateStr(n, 80))
		}
	}
	t.Logf("encrypted: %d records, %d distinct needles absent from %d files (%d bytes)", len(lines), len(needles), files, len(disk))
}

func truncateStr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
