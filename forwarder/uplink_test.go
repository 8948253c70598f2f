package forwarder

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// Two http sinks share a 50 KiB/s uplink: an alarm sink (priority 10,
// only alarm topics) and an archive sink (priority 1, everything, with a
// backlog of several seconds of the link). The alarm sink's records
// arrive within 1 s of being written while the archive lags; the archive
// catches up once the alarms leave it room.
func TestUplinkPriorities(t *testing.T) {
	alarmBE, archiveBE := newHTTPBackend(t), newHTTPBackend(t)
	up := NewUplink(UplinkConfig{MaxBytesPerSec: 50 << 10})
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	ck := newMemCkpt()

	alarm := httpCfg(alarmBE.srv.URL)
	alarm.Name, alarm.Priority = "alarms", 10
	alarm.Filter = Filter{Topics: []string{"alarm/#"}}
	archive := httpCfg(archiveBE.srv.URL)
	archive.Name, archive.Priority = "archive", 1
	archive.HTTP.Format = FormatNDJSON
	for _, c := range []*Config{&alarm, &archive} {
		c.RequestTimeout = conf.Duration(5 * time.Second)
	}
	newF := func(cfg Config) *Forwarder {
		o := testOpts(t, nil)
		o.Uplink = up
		f, err := New(cfg, src, ck, o)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	fAlarm, fArchive := newF(alarm), newF(archive)

	// ~300 KiB of backlog for the archive (records ~600 bytes after the
	// envelope): six seconds of the whole link.
	bulk := []byte(strings.Repeat("x", 400))
	const backlog = 500
	for i := range backlog {
		sh.append(shards.Record{Key: fmt.Sprintf("meter-%d", i%20), Topic: "meters/data", Data: bulk})
	}
	start(t, fAlarm)
	start(t, fArchive)
	began := time.Now()
	const alarms = 40
	for i := range alarms {
		sh.append(shards.Record{Key: fmt.Sprintf("valve-%d", i%4), Topic: "alarm/valve", Data: []byte(fmt.Sprintf(`{"alarm":%d,"pad":"%s"}`, i, strings.Repeat("y", 200)))})
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "every alarm delivered", func() bool { return fAlarm.Lag().Sent == alarms })
	archiveLagDuringAlarms := fArchive.Lag()
	waitFor(t, 30*time.Second, "the archive caught up", func() bool { return fArchive.Lag().Sent == backlog+alarms })
	elapsed := time.Since(began)

	var worst time.Duration
	alarmBE.mu.Lock()
	for i, e := range alarmBE.got {
		ts, err := time.Parse(TimeFormat, e.TS)
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, alarmBE.at[i].Sub(ts))
	}
	alarmBE.mu.Unlock()
	t.Logf("alarm worst lag %v; archive lag while alarms flowed: %d records, oldest %v; archive done after %v",
		worst, archiveLagDuringAlarms.Records, archiveLagDuringAlarms.OldestAge, elapsed)
	if worst >= time.Second {
		t.Errorf("alarm lag %v, want < 1s", worst)
	}
	if archiveLagDuringAlarms.OldestAge < 2*time.Second {
		t.Errorf("the archive was not held back (oldest %v): the uplink cap did not bite", archiveLagDuringAlarms.OldestAge)
	}
	// 500 records of ~600 bytes cannot cross a 50 KiB/s link much faster
	// than ~6s (plus one second of burst).
	if elapsed < 4*time.Second {
		t.Errorf("archive done in %v: faster than the uplink allows", elapsed)
	}
	checkLedgerAny(t, alarmBE.received(), alarms)
	checkLedgerAny(t, archiveBE.received(), backlog+alarms)
}

// checkLedgerAny checks that n distinct records arrived.
func checkLedgerAny(t *testing.T, got []Envelope, n int) {
	t.Helper()
	ids := map[string]bool{}
	for _, e := range got {
		ids[e.ID] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct records delivered, want %d", len(ids), n)
	}
}

// The scheduler on its own: the higher priority always wins a grant;
// equals alternate by bytes served.
func TestUplinkScheduler(t *testing.T) {
	up := NewUplink(UplinkConfig{MaxBytesPerSec: 1000})
	now := time.Now()
	hi := up.join(10, make(chan struct{}, 1))
	lo1 := up.join(1, make(chan struct{}, 1))
	lo2 := up.join(1, make(chan struct{}, 1))
	if ok, _ := lo1.acquire(now); !ok {
		t.Fatal("a lone waiter must be granted")
	}
	lo1.idle()
	if ok, _ := hi.acquire(now); !ok {
		t.Fatal("hi not granted")
	}
	hi.take(500, now)
	// 500 of the 1000-byte burst left: lo2 may go.
	ok, at := lo2.acquire(now)
	if !ok {
		t.Fatalf("lo2 refused with tokens left (retry at %v)", at.Sub(now))
	}
	lo2.take(1000, now) // into debt: 500 bytes, half a second
	if ok, at := hi.acquire(now); ok || at.Sub(now) < 400*time.Millisecond {
		t.Fatalf("hi granted while in debt (ok %v, at %v)", ok, at.Sub(now))
	}
	later := now.Add(600 * time.Millisecond)
	if ok, _ := lo1.acquire(later); ok {
		t.Fatal("lo1 granted while hi waits")
	}
	select {
	case <-hi.wake:
	default:
		t.Fatal("hi not woken for its turn")
	}
	if ok, _ := hi.acquire(later); !ok {
		t.Fatal("hi refused its turn")
	}
	hi.take(10, later)
	hi.idle()
	// lo1 has served 0 bytes, lo2 1000: lo1 goes first.
	if ok, _ := lo2.acquire(later); ok {
		t.Fatal("lo2 granted before lo1, which has sent less")
	}
	if ok, _ := lo1.acquire(later); !ok {
		t.Fatal("lo1 refused")
	}
	for _, h := range []*uplinkUser{hi, lo1, lo2} {
		h.leave()
	}
	if len(up.users) != 0 {
		t.Fatal("users left behind")
	}
	var none *Uplink
	if ok, _ := none.join(1, nil).acquire(now); !ok {
		t.Fatal("no uplink must grant everything")
	}
}
