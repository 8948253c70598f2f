package forwarder

import (
	"testing"
	"time"
)

// TestPauseResume: an operator's pause sends nothing new and says so in
// the state; records wait locally; resume sends them all.
func TestPauseResume(t *testing.T) {
	src := newMemSource("shardId-000000000000")
	sh := src.shard("shardId-000000000000")
	kin := newFakeKinesis(t)
	f, err := New(testCfg(), src, newMemCkpt(), testOpts(t, kin))
	if err != nil {
		t.Fatal(err)
	}
	f.Pause()
	start(t, f)
	writeRecords([]*memShard{sh}, keysN(4), 0, 5)
	waitFor(t, 5*time.Second, "paused by an operator", func() bool {
		st := f.Lag().State
		return st.Phase == Paused && st.Reason == ReasonOperator
	})
	time.Sleep(200 * time.Millisecond)
	if n := kin.callCount(); n != 0 {
		t.Fatalf("%d requests while paused", n)
	}
	if lag := f.Lag(); lag.Records != 20 || lag.Sent != 0 || !f.Held() {
		t.Fatalf("lag while paused: %+v held=%v", lag, f.Held())
	}
	f.Resume()
	waitFor(t, 5*time.Second, "resumed and drained", func() bool { return f.Lag().Sent == 20 })
	if st := f.Lag().State; st.Phase != Running || f.Held() {
		t.Fatalf("state after resume: %v held=%v", st, f.Held())
	}
}
