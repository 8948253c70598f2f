package harness

// Power-cut helpers: a lazyfs disk under the gateway, the cut itself, a
// client for the gateway's API, background activities that a cut lands
// in the middle of, and the checks of what must survive. See
// integration/powercut_test.go for the tests and the durability bounds.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/weir-gateway/weir/firmware-sim/payload"
	"github.com/weir-gateway/weir/gateway/apiclient"
	"github.com/weir-gateway/weir/integration/kinesalite"
	"github.com/weir-gateway/weir/integration/lazyfs"
)

// ---------------------------------------------------------------- disk

// mountWatchdog bounds how long one test may keep a lazyfs mount: the
// test process serves the mount, so a hang there would hang the suite.
const mountWatchdog = 4 * time.Minute

// Disk is a lazyfs mount standing in for the gateway's disk: a power cut
// undoes everything the gateway did not fsync. See MountDisk.
type Disk struct {
	t       testing.TB
	FS      *lazyfs.FS
	Backing string // the real directory behind the mount
	Mnt     string // the mountpoint; the gateway's data_dir is DataDir()
	logs    *diskLog
	last    lazyfs.Stats // counters at the previous cut
}

type diskLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *diskLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *diskLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// MountDisk mounts a fresh, empty lazyfs under t.TempDir(). It fails the
// test (never skips) when FUSE is unavailable: CI runs as root, and a
// power-cut test that quietly does not run proves nothing. The mount is
// removed when the test ends, after the gateway (started later, so
// cleaned up earlier) is dead.
func MountDisk(t testing.TB) *Disk {
	t.Helper()
	// A test binary killed mid-run (a -timeout panic) leaves a dead mount
	// that makes its temp directory undeletable; clear such leftovers.
	if swept, err := lazyfs.SweepStale(os.TempDir()); err != nil || len(swept) > 0 {
		t.Logf("harness: swept stale lazyfs mounts %v (err %v)", swept, err)
	}
	base := t.TempDir()
	d := &Disk{t: t, Backing: filepath.Join(base, "backing"), Mnt: filepath.Join(base, "mnt"), logs: &diskLog{}}
	if err := os.Mkdir(d.Backing, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := lazyfs.Mount(d.Backing, d.Mnt, lazyfs.Options{Logger: log.New(d.logs, "", log.Ltime|log.Lmicroseconds)})
	if err != nil {
		t.Fatalf("harness: mount lazyfs (power-cut tests need root and /dev/fuse; they fail rather than skip): %v", err)
	}
	d.FS = f
	watchdog := time.AfterFunc(mountWatchdog, func() {
		t.Errorf("harness: lazyfs still mounted after %v; aborting its FUSE connection", mountWatchdog)
		if err := f.Abort(); err != nil {
			t.Errorf("harness: lazyfs abort: %v", err)
		}
	})
	t.Cleanup(func() {
		watchdog.Stop()
		if err := f.Unmount(); err != nil {
			t.Errorf("harness: lazyfs unmount: %v (aborting instead)", err)
			if err := f.Abort(); err != nil {
				t.Errorf("harness: lazyfs abort: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("harness: lazyfs log:\n%s", d.logs.String())
		}
	})
	return d
}

// DataDir is where a gateway on this disk keeps its data. It does not
// exist before the gateway creates it, as on a fresh install: making
// its own directories durable is part of what is tested.
func (d *Disk) DataDir() string { return filepath.Join(d.Mnt, "data") }

// CutReport is what one power cut did.
type CutReport struct {
	At     time.Time     // just before SIGKILL: nothing later can have been synced
	Dead   time.Time     // when the process was reaped: no write after it
	Undone lazyfs.Stats  // the counters since the previous cut: what was written and synced, and what this cut undid
	Took   time.Duration // kill + rollback + remount
}

// PowerCut cuts the power under a running gateway: SIGKILL (the process
// dies as with a power loss, and its open files are closed, which
// lazyfs needs), then lazyfs undoes every write, create, rename and
// unlink that was not fsynced. The gateway is left stopped: Restart it
// on what survived.
func (d *Disk) PowerCut(w *Weir) CutReport {
	d.t.Helper()
	before := d.last
	c := CutReport{At: time.Now()}
	w.Kill9()
	c.Dead = time.Now()
	// The kernel closes a dead process's files asynchronously (FUSE
	// RELEASE); the unmount inside PowerCut is refused until it has.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.FS.PowerCut()
		if err == nil {
			break
		}
		if !errors.Is(err, lazyfs.ErrBusy) || time.Now().After(deadline) {
			d.t.Fatalf("harness: power cut: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Took = time.Since(c.At)
	after := d.FS.Stats()
	d.last = after
	c.Undone = lazyfs.Stats{
		Writes:        after.Writes - before.Writes,
		BytesWritten:  after.BytesWritten - before.BytesWritten,
		Syncs:         after.Syncs - before.Syncs,
		DataSyncs:     after.DataSyncs - before.DataSyncs,
		DirSyncs:      after.DirSyncs - before.DirSyncs,
		Cuts:          after.Cuts - before.Cuts,
		BytesUndone:   after.BytesUndone - before.BytesUndone,
		EntriesUndone: after.EntriesUndone - before.EntriesUndone,
	}
	return c
}

// SyncTree fsyncs every file and directory under dir (on the mount), as
// sync(1) would: everything there becomes durable. Call it with the
// gateway stopped.
func (d *Disk) SyncTree(t testing.TB, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err != nil {
		t.Fatalf("harness: sync %s: %v", dir, err)
	}
	// dir's own entry, and its parent's up to the mountpoint.
	for p := filepath.Dir(dir); pathWithin(p, d.Mnt); p = filepath.Dir(p) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			t.Fatalf("harness: sync %s: %v", p, err)
		}
	}
}

func pathWithin(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// MissingAfterCut names the parts of a gateway's data directory that a
// power cut removed although the gateway had created them long before:
// the directory itself, streams/, each stream's shard map and its log's
// directory (before stream.json version 3: each shard's listed in it). The ledger check would only say
// "everything is missing"; this says which fsync of a directory the
// gateway left out. Call it with the gateway stopped.
func MissingAfterCut(dataDir string, streams ...string) []string {
	var gone []string
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if !exists(dataDir) {
		return []string{dataDir + " (the data directory itself: its parent was never fsynced after it was created)"}
	}
	sd := filepath.Join(dataDir, "streams")
	if !exists(sd) {
		return []string{sd + " (its entry in the data directory was never fsynced)"}
	}
	for _, s := range streams {
		dir := filepath.Join(sd, s)
		b, err := os.ReadFile(filepath.Join(dir, "stream.json"))
		if err != nil {
			gone = append(gone, fmt.Sprintf("%s/stream.json (%v)", dir, err))
			continue
		}
		var m struct {
			Version int `json:"version"`
			Shards  []struct {
				ID string `json:"id"`
			} `json:"shards"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			gone = append(gone, fmt.Sprintf("%s/stream.json is damaged: %v", dir, err))
			continue
		}
		if m.Version >= 3 {
			// One log for the stream's shards (shards/FORMAT.md); shards'
			// own logs of older versions may go when retention empties them.
			if !exists(filepath.Join(dir, "log")) {
				gone = append(gone, filepath.Join(dir, "log")+" (the stream's log: its directory entry in the stream directory was never fsynced)")
			}
			continue
		}
		for _, sh := range m.Shards {
			if sh.ID != "" && !exists(filepath.Join(dir, sh.ID)) {
				gone = append(gone, filepath.Join(dir, sh.ID)+" (a shard the map lists: its directory entry in the stream directory was never fsynced)")
			}
		}
	}
	return gone
}

// ---------------------------------------------------------------- config

// PowerCutConfig is a gateway for power-cut tests: one stream
// "telemetry" fed by devices/+/telemetry keyed by device, no write or
// read limits, optionally a forwarder.
type PowerCutConfig struct {
	Fsync       string        // always (default) | interval
	Interval    time.Duration // with interval
	Shards      int           // default 4
	SegmentSize string        // e.g. "16KiB"; default 64KiB
	Retention   time.Duration // 0 = 24h
	// Forward, if set, forwards the stream to this upstream stream at
	// ForwardEndpoint (kinesalite) with the test credentials.
	Forward         string
	ForwardEndpoint string
	// KeysDir, if set, is the gateway's encryption.keys_dir.
	KeysDir string
}

// Opts renders the configuration for StartWeir on dataDir.
func (c PowerCutConfig) Opts(dataDir string) Opts {
	fsync := c.Fsync
	if fsync == "" {
		fsync = "always"
	}
	shards := c.Shards
	if shards == 0 {
		shards = 4
	}
	seg := c.SegmentSize
	if seg == "" {
		seg = "64KiB"
	}
	ret := "24h"
	if c.Retention > 0 {
		ret = c.Retention.String()
	}
	var b strings.Builder
	b.WriteString("data_dir: {{printf \"%q\" .DataDir}}\n")
	b.WriteString("log: {level: info, format: json}\n")
	b.WriteString("mqtt:\n  listen: {{.MQTT}}\n")
	fmt.Fprintf(&b, "durability:\n  fsync: %s\n", fsync)
	if c.Interval > 0 {
		fmt.Fprintf(&b, "  interval: %s\n", c.Interval)
	}
	if c.KeysDir != "" {
		fmt.Fprintf(&b, "encryption:\n  keys_dir: %q\n", c.KeysDir)
	}
	b.WriteString("api:\n  listen: \"{{.API}}\"\n  read_limits: {calls_per_sec: 0, bytes_per_sec: 0}\n")
	fmt.Fprintf(&b, "streams:\n  - name: telemetry\n    shards: %d\n    segment_size: %s\n    max_record_size: 2KiB\n    retention: %s\n", shards, seg, ret)
	b.WriteString("    rate: {records_per_sec: 0, bytes_per_sec: 0}\n")
	b.WriteString("routes:\n  - filter: devices/+/telemetry\n    stream: telemetry\n    partition_key: \"{topic.1}\"\n")
	o := Opts{DataDir: dataDir}
	if c.Forward != "" {
		fmt.Fprintf(&b, "forwarders:\n  - stream: telemetry\n    target_stream: %s\n    region: %s\n    endpoint: %q\n    linger: 10ms\n    request_timeout: 2s\n",
			c.Forward, kinesalite.Region, c.ForwardEndpoint)
		creds, _ := kinesalite.Credentials.Retrieve(context.Background())
		o.Env = []string{"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey,
			"AWS_REGION=" + kinesalite.Region, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
	}
	o.YAML = b.String()
	return o
}

// ---------------------------------------------------------------- API

// GatewayAPI talks to a running gateway: Kinesis operations through the AWS SDK
// (no retries, so a dead gateway shows at once), weir's own through
// gateway/apiclient.
type GatewayAPI struct {
	URL     string
	Addr    string // host:port
	Kinesis *kinesis.Client
	Client  *apiclient.Client
}

// NewGatewayAPI returns a client for w's API; it keeps working across restarts
// (same port).
func NewGatewayAPI(w *Weir) *GatewayAPI {
	hc := &http.Client{Timeout: 10 * time.Second}
	kc := kinesis.New(kinesis.Options{
		Region:       "local",
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
		BaseEndpoint: aws.String(w.APIURL()),
		HTTPClient:   hc,
		Retryer:      aws.NopRetryer{},
	})
	c, err := w.API()
	if err != nil {
		w.t.Fatal(err)
	}
	return &GatewayAPI{URL: w.APIURL(), Addr: w.APIAddr, Kinesis: kc, Client: c}
}

// GatewayAPIError is an error answer of the gateway.
type GatewayAPIError = apiclient.Error

// Call runs WeirGateway_20261125.<op> with in as JSON and decodes the
// answer into out (if not nil).
func (a *GatewayAPI) Call(ctx context.Context, op string, in, out any) error {
	return a.Client.Weir(ctx, op, in, out)
}

// ShardCheckpoint is one shard's entry in GetCheckpoints.
type ShardCheckpoint = apiclient.Checkpoint

// GetCheckpoints returns a consumer's (or forwarder's) positions.
func (a *GatewayAPI) GetCheckpoints(ctx context.Context, stream, consumer string) ([]ShardCheckpoint, error) {
	return a.Client.GetCheckpoints(ctx, stream, consumer)
}

// CommitCheckpoint commits a consumer's position in one shard.
func (a *GatewayAPI) CommitCheckpoint(ctx context.Context, stream, consumer, shard, seq string) error {
	return a.Client.CommitCheckpoint(ctx, stream, consumer, shard, seq)
}

// ListShards lists every shard of the stream the gateway still keeps.
//
// A read that failed in transport (no error answer) is asked again, up to
// three times: CI once saw a 200 answer to ListShards whose body could not
// be read ("use of closed network connection", the client's own socket)
// on a gateway that was up and logged nothing. What the checks after a
// restart judge is the answer, and an error answer still fails at once.
func (a *GatewayAPI) ListShards(ctx context.Context, stream string) ([]types.Shard, error) {
	var err error
	for range 3 {
		var list []types.Shard
		if list, err = kinesalite.Shards(ctx, a.Kinesis, stream); err == nil {
			return list, nil
		}
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) || ctx.Err() != nil || a.Down() {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("three times: %w", err)
}

// Down reports whether nothing accepts connections on the API's port:
// the gateway is dead (or not yet restarted).
func (a *GatewayAPI) Down() bool {
	c, err := net.DialTimeout("tcp", a.Addr, 300*time.Millisecond)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// ---------------------------------------------------------------- activities

// Activity runs a step after step in the background (a reshard, a
// checkpoint commit, ...) so that a power cut lands in the middle of
// one. When a step fails because the gateway is down, the activity parks
// until Resume: nothing talks to the restarted gateway before the test
// has looked at what survived.
type Activity struct {
	Name   string
	api    *GatewayAPI
	step   func(ctx context.Context) error
	cancel context.CancelFunc
	done   chan struct{}
	parked chan struct{}
	resume chan struct{}

	Steps  atomic.Int64 // steps that succeeded
	Errors atomic.Int64 // steps the gateway refused (an error answer) while it was up
	// Transient counts steps that failed in transport (a connection
	// closed under a request) while the gateway was up: logged, not
	// failed on, as they say nothing about what the gateway stored.
	Transient atomic.Int64
	mu        sync.Mutex
	errs      []string
}

// StartActivity runs step in a loop until Stop; pause between steps.
func StartActivity(t testing.TB, name string, a *GatewayAPI, pause time.Duration, step func(ctx context.Context) error) *Activity {
	ctx, cancel := context.WithCancel(context.Background())
	act := &Activity{Name: name, api: a, step: step, cancel: cancel, done: make(chan struct{}),
		parked: make(chan struct{}, 1), resume: make(chan struct{})}
	go act.run(ctx, pause)
	t.Cleanup(act.Stop)
	return act
}

func (a *Activity) run(ctx context.Context, pause time.Duration) {
	defer close(a.done)
	for ctx.Err() == nil {
		err := a.step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			a.Steps.Add(1)
		case a.downSoon(ctx):
			a.parked <- struct{}{}
			select {
			case <-a.resume:
			case <-ctx.Done():
				return
			}
			continue
		default:
			// The SDK's errors and apiclient's are both smithy.APIError.
			var apiErr smithy.APIError
			if errors.As(err, &apiErr) {
				a.Errors.Add(1)
			} else {
				a.Transient.Add(1)
			}
			a.mu.Lock()
			if len(a.errs) < 5 {
				a.errs = append(a.errs, err.Error())
			}
			a.mu.Unlock()
		}
		if !sleepCtx(ctx, pause) {
			return
		}
	}
}

// downSoon tells a failure caused by the gateway's death from any other:
// a request cut off by SIGKILL may fail a moment before the kernel has
// closed the dead process's listening socket.
func (a *Activity) downSoon(ctx context.Context) bool {
	for range 5 {
		if a.api.Down() {
			return true
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return false
		}
	}
	return false
}

// WaitParked waits until the activity noticed that the gateway is down
// and stopped; after it, its state may be read without a race.
func (a *Activity) WaitParked(t testing.TB) {
	t.Helper()
	select {
	case <-a.parked:
	case <-a.done:
		t.Fatalf("harness: activity %s ended", a.Name)
	case <-time.After(15 * time.Second):
		t.Fatalf("harness: activity %s did not notice within 15s that the gateway is down", a.Name)
	}
}

// Resume lets a parked activity go on.
func (a *Activity) Resume() {
	select {
	case a.resume <- struct{}{}:
	case <-a.done:
	}
}

// Stop ends the activity and waits for it.
func (a *Activity) Stop() {
	a.cancel()
	<-a.done
}

// ErrorSample returns the first few errors of steps that failed while
// the gateway was up (refusals and transport failures).
func (a *Activity) ErrorSample() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.errs...)
}

// ---------------------------------------------------------------- durability check

// LossWindow is a span of acknowledgement times around a cut.
type LossWindow struct {
	From, To time.Time
	Cut      time.Time // the cut the window belongs to: ages are measured from it
}

// LossRules say which acknowledged records may legitimately be missing.
type LossRules struct {
	// LossWindows: with fsync: interval, records acknowledged inside one
	// of them (the last interval + one fsync before a cut) may be lost.
	LossWindows []LossWindow
	// RetentionBefore: records acknowledged before it may have been
	// deleted by retention, but only the oldest of each device: a
	// missing record newer than a stored one of the same device is lost,
	// whatever its age. Zero: no retention.
	RetentionBefore time.Time
	// ProbeKeyPrefix marks records that are not simulator payloads but
	// were written on purpose (probes); any other such record is garbage.
	ProbeKeyPrefix string
}

// DurabilityReport counts what CheckDurability found; Problems describe
// the first violations.
type DurabilityReport struct {
	Acked            int // acknowledged messages in the ledger
	Stored           int // simulator records in the dump (duplicates included)
	Duplicates       int
	UnackedStored    int // stored, never acknowledged (died between fsync and PUBACK)
	Probes           int
	Lost             int // acknowledged, missing, not allowed by the rules: data loss
	LostInWindow     int // acknowledged, missing, inside a loss window (fsync: interval)
	RetentionDeleted int // acknowledged, missing, deleted by retention
	OutOfOrder       int // a device's stored records not in its order
	WrongKey         int
	Garbage          int // records that are neither simulator payloads nor probes
	Phantom          int // simulator records the device never sent
	SeqDisorder      int // sequence numbers not increasing within a shard
	// MaxLostAge is the largest (cut - ack time) of a record lost inside
	// a loss window: how far before the cut loss reached.
	MaxLostAge time.Duration
	Problems   []string
}

func (r DurabilityReport) String() string {
	return fmt.Sprintf("acked=%d stored=%d duplicates=%d unacked_stored=%d probes=%d lost=%d lost_in_window=%d retention_deleted=%d out_of_order=%d wrong_key=%d garbage=%d phantom=%d seq_disorder=%d max_lost_age=%v",
		r.Acked, r.Stored, r.Duplicates, r.UnackedStored, r.Probes, r.Lost, r.LostInWindow, r.RetentionDeleted,
		r.OutOfOrder, r.WrongKey, r.Garbage, r.Phantom, r.SeqDisorder, r.MaxLostAge)
}

// Violations is the number of broken promises (everything but the
// allowed losses).
func (r DurabilityReport) Violations() int {
	return r.Lost + r.OutOfOrder + r.WrongKey + r.Garbage + r.Phantom + r.SeqDisorder
}

// CheckDurability compares what a gateway acknowledged (the ledger) with
// what it stored (a dump) and reports without failing the test, so that
// a test can also assert that a non-durable setting IS caught. It checks:
// every acknowledged message is stored unless the rules allow its loss;
// sequence numbers increase within each shard; each device's stored
// records (first copies, acknowledged or not) appear in its sequence
// order across shards in dump order (parents before children); keys are
// the device's; nothing stored is garbage or a message the device never
// sent (a sequence number past its last acknowledged one plus the one in
// flight).
func CheckDurability(l *Ledger, dumped []Line, r LossRules) DurabilityReport {
	var rep DurabilityReport
	problem := func(f string, a ...any) {
		if len(rep.Problems) < 20 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(f, a...))
		}
	}
	maxAcked := map[string]uint64{}
	acked := map[msgID]time.Time{}
	perDevice := map[string][]msgID{}
	for _, e := range l.Entries {
		if e.Probe != "" {
			continue
		}
		m := msgID{e.Device, e.Seq}
		if _, dup := acked[m]; dup {
			continue
		}
		rep.Acked++
		acked[m] = e.Ack
		perDevice[e.Device] = append(perDevice[e.Device], m)
		maxAcked[e.Device] = max(maxAcked[e.Device], e.Seq)
	}

	first := map[msgID]bool{}
	lastSeq := map[string]uint64{}   // per shard
	lastDev := map[string]uint64{}   // per device: seq of its last first-copy in dump order
	minStored := map[string]uint64{} // per device
	for _, ln := range dumped {
		if prev, ok := lastSeq[ln.Shard]; ok && ln.Seq <= prev {
			rep.SeqDisorder++
			problem("shard %s: seq %d follows %d", ln.Shard, ln.Seq, prev)
		}
		lastSeq[ln.Shard] = ln.Seq
		id, err := payload.Decode(ln.Data)
		if err != nil {
			if r.ProbeKeyPrefix != "" && strings.HasPrefix(ln.Key, r.ProbeKeyPrefix) {
				rep.Probes++
			} else {
				rep.Garbage++
				problem("garbage: shard %s seq %d key %q: %d bytes %q", ln.Shard, ln.Seq, ln.Key, len(ln.Data), truncate(string(ln.Data), 60))
			}
			continue
		}
		rep.Stored++
		if ln.Key != id.Device {
			rep.WrongKey++
			problem("wrong key: %s seq %d stored under %q", id.Device, id.Seq, ln.Key)
		}
		if id.Seq > maxAcked[id.Device]+1 {
			rep.Phantom++
			problem("phantom: %s seq %d stored, but its last acknowledged message is %d", id.Device, id.Seq, maxAcked[id.Device])
		}
		m := msgID{id.Device, id.Seq}
		if first[m] {
			rep.Duplicates++
			continue
		}
		first[m] = true
		if _, ok := acked[m]; !ok {
			rep.UnackedStored++
		}
		if prev, ok := lastDev[id.Device]; ok && id.Seq < prev {
			rep.OutOfOrder++
			problem("out of order: %s seq %d stored after seq %d (shard %s seq %d)", id.Device, id.Seq, prev, ln.Shard, ln.Seq)
		}
		lastDev[id.Device] = max(lastDev[id.Device], id.Seq)
		if v, ok := minStored[id.Device]; !ok || id.Seq < v {
			minStored[id.Device] = id.Seq
		}
	}

	devices := make([]string, 0, len(perDevice))
	for d := range perDevice {
		devices = append(devices, d)
	}
	sort.Strings(devices)
	for _, d := range devices {
		ms := perDevice[d]
		sort.Slice(ms, func(i, j int) bool { return ms[i].seq < ms[j].seq })
		for _, m := range ms {
			if first[m] {
				continue
			}
			ack := acked[m]
			low, haveLow := minStored[d]
			if !r.RetentionBefore.IsZero() && ack.Before(r.RetentionBefore) && (!haveLow || m.seq < low) {
				rep.RetentionDeleted++
				continue
			}
			if w, ok := inWindow(r.LossWindows, ack); ok {
				rep.LostInWindow++
				rep.MaxLostAge = max(rep.MaxLostAge, w.Cut.Sub(ack))
				continue
			}
			rep.Lost++
			problem("lost: %s seq %d, acknowledged at %s", d, m.seq, ack.Format("15:04:05.000000"))
		}
	}
	return rep
}

func inWindow(ws []LossWindow, t time.Time) (LossWindow, bool) {
	for _, w := range ws {
		if !t.Before(w.From) && !t.After(w.To) {
			return w, true
		}
	}
	return LossWindow{}, false
}

// ---------------------------------------------------------------- shard map, positions

// ShardMapProblems checks a stream's shard map as ListShards gives it:
// open shards tile the hash space [0, 2^128-1] without gap or overlap;
// every parent is listed (unless expiredParentsOK: retention may have
// expired it), closed, and ended before its children start; closed
// shards carry an ending sequence number; ids are unique.
func ShardMapProblems(shards []types.Shard, expiredParentsOK bool) []string {
	var out []string
	byID := map[string]types.Shard{}
	type rng struct {
		id         string
		start, end *big.Int
	}
	var open []rng
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		if _, dup := byID[id]; dup {
			out = append(out, "duplicate shard id "+id)
		}
		byID[id] = s
		if s.HashKeyRange == nil || s.SequenceNumberRange == nil {
			out = append(out, id+": no hash key range or sequence number range")
			continue
		}
		lo, ok1 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, ok2 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		if !ok1 || !ok2 || lo.Cmp(hi) > 0 {
			out = append(out, fmt.Sprintf("%s: bad hash key range %s..%s", id, aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey)))
			continue
		}
		if _, err := seqIndex(aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)); err != nil {
			out = append(out, fmt.Sprintf("%s: starting sequence number %q", id, aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)))
		}
		if end := s.SequenceNumberRange.EndingSequenceNumber; end != nil {
			if _, err := seqIndex(*end); err != nil {
				out = append(out, fmt.Sprintf("%s: ending sequence number %q", id, *end))
			}
			continue
		}
		open = append(open, rng{id, lo, hi})
	}
	sort.Slice(open, func(i, j int) bool { return open[i].start.Cmp(open[j].start) < 0 })
	maxKey := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	next := big.NewInt(0)
	for _, r := range open {
		if r.start.Cmp(next) != 0 {
			out = append(out, fmt.Sprintf("open shards do not tile the hash space: %s starts at %s, expected %s", r.id, r.start, next))
		}
		next = new(big.Int).Add(r.end, big.NewInt(1))
	}
	if len(open) == 0 {
		out = append(out, "no open shard")
	} else if last := open[len(open)-1]; last.end.Cmp(maxKey) != 0 {
		out = append(out, fmt.Sprintf("open shards end at %s, not 2^128-1", last.end))
	}
	for _, s := range shards {
		id := aws.ToString(s.ShardId)
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p == nil || *p == "" {
				continue
			}
			ps, ok := byID[*p]
			if !ok {
				if !expiredParentsOK {
					out = append(out, fmt.Sprintf("%s: parent %s is not listed", id, *p))
				}
				continue
			}
			if ps.SequenceNumberRange == nil || ps.SequenceNumberRange.EndingSequenceNumber == nil {
				out = append(out, fmt.Sprintf("%s: parent %s is still open", id, *p))
				continue
			}
			// Sequence numbers compare as integers: by length, then digits.
			pe := *ps.SequenceNumberRange.EndingSequenceNumber
			if s.SequenceNumberRange != nil {
				cs := aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)
				if len(cs) < len(pe) || (len(cs) == len(pe) && cs <= pe) {
					out = append(out, fmt.Sprintf("%s starts at seq %s, not after its parent %s's end %s", id, cs, *p, pe))
				}
			}
		}
	}
	return out
}

// ShardNumber is the number in "shardId-000000000042" (-1 if none).
func ShardNumber(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "shardId-"))
	if err != nil {
		return -1
	}
	return n
}

// PositionProblems checks a consumer's or forwarder's checkpoints after
// a cut: each parses and points at a position the stream's log still has
// or had: at most the last stored record of the whole stream, never past
// data that is gone. (A shard's numbers have the other shards' records in
// their gaps, so a reader that passed over them may stand past its own
// shard's last record, but never past the log's.)
func PositionProblems(who string, cps []ShardCheckpoint, shards []types.Shard) []string {
	var last uint64 // the stream's last stored position
	for _, s := range shards {
		if s.SequenceNumberRange != nil {
			if st, err := seqIndex(aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)); err == nil && st > 0 {
				last = max(last, st-1)
			}
		}
	}
	var out []string
	for _, c := range cps {
		if c.LastSequenceNumber == "" {
			continue
		}
		l, err := seqIndex(c.LastSequenceNumber)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %s: last sequence number %q does not parse", who, c.ShardId, c.LastSequenceNumber))
			continue
		}
		last = max(last, l)
	}
	for _, c := range cps {
		switch c.Status {
		case "NONE":
			if c.SequenceNumber != "" {
				out = append(out, fmt.Sprintf("%s: %s: status NONE with sequence number %q", who, c.ShardId, c.SequenceNumber))
			}
			continue
		case "OK", "TRIMMED":
		default:
			out = append(out, fmt.Sprintf("%s: %s: status %q", who, c.ShardId, c.Status))
			continue
		}
		seq, err := seqIndex(c.SequenceNumber)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %s: checkpoint %q does not parse", who, c.ShardId, c.SequenceNumber))
			continue
		}
		if seq > last {
			out = append(out, fmt.Sprintf("%s: %s: checkpoint %d is past the stream's last stored record %d: it points past data that is gone, and records appended later under those numbers would be skipped", who, c.ShardId, seq, last))
		}
	}
	return out
}

// ---------------------------------------------------------------- upstream

// UpstreamReport is what CheckUpstream found.
type UpstreamReport struct {
	Upstream   int // records read from the upstream stream
	Missing    int // stored records that never reached upstream
	OutOfOrder int // first copies of a key's messages not in the device's order
	Problems   []string
}

// CheckUpstream asserts that every record of a dump reached the upstream
// stream (at least once), and that per key the upstream holds the
// device's messages in its order (first copies).
func CheckUpstream(dumped []Line, up []kinesalite.Record) UpstreamReport {
	rep := UpstreamReport{Upstream: len(up)}
	problem := func(f string, a ...any) {
		if len(rep.Problems) < 20 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(f, a...))
		}
	}
	have := map[string]bool{}
	lastByKey := map[string]uint64{}
	seen := map[msgID]bool{}
	for _, r := range up {
		have[r.PartitionKey+"\x00"+string(r.Data)] = true
		id, err := payload.Decode(r.Data)
		if err != nil {
			continue
		}
		m := msgID{id.Device, id.Seq}
		if seen[m] {
			continue
		}
		seen[m] = true
		if prev, ok := lastByKey[r.PartitionKey]; ok && id.Seq < prev {
			rep.OutOfOrder++
			problem("upstream out of order: key %s seq %d after %d", r.PartitionKey, id.Seq, prev)
		}
		lastByKey[r.PartitionKey] = max(lastByKey[r.PartitionKey], id.Seq)
	}
	for _, ln := range dumped {
		if !have[ln.Key+"\x00"+string(ln.Data)] {
			rep.Missing++
			problem("not forwarded: shard %s seq %d key %s", ln.Shard, ln.Seq, ln.Key)
		}
	}
	return rep
}
