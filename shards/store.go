package shards

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/internal/fsutil"
	"github.com/weir-gateway/weir/wal"
)

// Options configures a Store.
type Options struct {
	Durability Durability
	// Streams are the streams the config file declares; they are created
	// if missing and their settings applied if present. Streams made by
	// CreateStream live on without being declared.
	Streams []StreamConfig
	// DefaultStream is the template for CreateStream (its name and shard
	// count are replaced).
	DefaultStream StreamConfig
	Logger        zerolog.Logger
	// Clock defaults to time.Now; tests inject one to drive retention.
	Clock func() time.Time
	// RetentionEvery is how often retention runs; default 1s.
	RetentionEvery time.Duration
	// NoRetentionLoop disables the background retention pass (tests call
	// EnforceRetention themselves).
	NoRetentionLoop bool
	// OpenExistingOnly refuses to create a missing data directory (offline
	// tools such as `weir dump` must not make one by mistake).
	OpenExistingOnly bool
	// KeysDir holds the stream encryption keys, one file per KeyId
	// (ENCRYPTION.md); "" turns StartStreamEncryption off.
	KeysDir string
	// Registerer, if set, gets the logs' fdatasync and commit group
	// histograms (wal.Metrics) while the store is open.
	Registerer prometheus.Registerer

	// Test seams, set only through export_test.go: the logs' filesystem
	// and the steps of metadata writes, for faults and crashes a real disk
	// cannot produce on cue. Nil means the real ones.
	walFS  wal.FS
	metaFS fsutil.Steps
}

// Appended tells where a record went.
type Appended struct {
	ShardID string
	Seq     uint64
}

// AppendOptions are per-record choices of the producer.
type AppendOptions struct {
	ExplicitHashKey *HashKey // replaces MD5(key) for choosing the shard
	NoWait          bool     // QoS 0: don't wait for the commit; refuse rather than wait for capacity
	// Try refuses with ErrThrottled at once when the shard's rate is spent,
	// instead of waiting (the stream's on_limit backpressure). Kinesis API
	// producers expect that answer and back off themselves; MQTT devices
	// get backpressure. In AppendBatch, a shard's records are admitted in
	// order until the rate is spent and the rest fail, so no record of a
	// shard is stored after one of the same call that was refused.
	Try bool
}

// Store holds every stream of one data directory. It is the single write
// path (MQTT and HTTP producers both call Append) and the single read path.
type Store struct {
	dir   string
	opts  Options
	log   zerolog.Logger
	lock  *os.File
	ckpts *Checkpoints
	keys  *keyring

	mu      sync.RWMutex
	streams map[string]*Stream
	closed  bool

	// applyMu serialises Apply (apply.go); it guards opts.Streams after
	// Open, the declared streams the next Apply compares against.
	applyMu sync.Mutex

	metrics storeMetrics
	walm    *wal.Metrics
	stop    chan struct{}
	done    sync.WaitGroup
}

type storeMetrics struct {
	appended, throttled, refusedFull atomic.Int64
	retentionDeleted, unreadDeleted  atomic.Int64
}

// Metrics is a snapshot of the store's counters.
type Metrics struct {
	Appended         int64 // records committed
	Throttled        int64 // records refused or dropped by a rate limit
	RefusedFull      int64 // appends refused by max_bytes or a full disk
	RetentionDeleted int64 // records deleted by retention or the size cap
	UnreadDeleted    int64 // of those, records a consumer or forwarder had not read yet
}

// Metrics returns the store's counters.
func (s *Store) Metrics() Metrics {
	return Metrics{
		Appended: s.metrics.appended.Load(), Throttled: s.metrics.throttled.Load(),
		RefusedFull: s.metrics.refusedFull.Load(), RetentionDeleted: s.metrics.retentionDeleted.Load(),
		UnreadDeleted: s.metrics.unreadDeleted.Load(),
	}
}

const streamsDir = "streams"

// Open opens (or creates) the data directory dir. It takes an exclusive
// lock so that two gateways never write the same logs.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.RetentionEvery <= 0 {
		opts.RetentionEvery = time.Second
	}
	if opts.metaFS == nil {
		opts.metaFS = fsutil.OS{}
	}
	opts.Durability = opts.Durability.WithDefaults()
	if opts.OpenExistingOnly {
		if _, err := os.Stat(filepath.Join(dir, streamsDir)); err != nil {
			return nil, fmt.Errorf("shards: %s is not a weir data directory: %w", dir, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, streamsDir), 0o755); err != nil {
		return nil, fmt.Errorf("shards: create data dir: %w", err)
	}
	// A directory entry is durable only once its parent is fsynced: without
	// this a power cut right after the first start can take the whole data
	// directory, and every record acknowledged in it, away.
	for _, d := range []string{filepath.Dir(filepath.Clean(dir)), dir} {
		if err := fsutil.SyncDir(d); err != nil {
			return nil, fmt.Errorf("shards: sync %s: %w", d, err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("shards: open lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrDataDirLocked, dir, err)
	}
	keys, err := newKeyring(opts.KeysDir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, lock: lock, keys: keys, streams: map[string]*Stream{}, stop: make(chan struct{})}
	if opts.Registerer != nil {
		s.walm = wal.NewMetrics()
		if err := opts.Registerer.Register(s.walm); err != nil {
			lock.Close()
			return nil, fmt.Errorf("shards: register metrics: %w", err)
		}
	}
	s.ckpts = &Checkpoints{dir: filepath.Join(dir, "checkpoints"), fs: opts.metaFS, clock: opts.Clock, files: map[string]*ckptFile{}}
	if err := s.load(); err != nil {
		s.closeStreams()
		if opts.Registerer != nil {
			opts.Registerer.Unregister(s.walm)
		}
		lock.Close()
		return nil, err
	}
	if !opts.NoRetentionLoop {
		s.done.Add(1)
		go s.retentionLoop()
	}
	return s, nil
}

func (s *Store) now() time.Time { return s.opts.Clock() }

func (s *Store) streamDir(name string) string { return filepath.Join(s.dir, streamsDir, name) }

// load opens every stream on disk, then creates or updates the declared ones.
func (s *Store) load() error {
	entries, err := os.ReadDir(filepath.Join(s.dir, streamsDir))
	if err != nil {
		return err
	}
	declared := map[string]StreamConfig{}
	for _, c := range s.opts.Streams {
		declared[c.Name] = c
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := s.streamDir(e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			// A deletion or creation that did not finish.
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			continue
		}
		m, err := readMeta(dir)
		if errors.Is(err, fs.ErrNotExist) {
			s.log.Warn().Str("dir", dir).Msg("removing stream directory without a shard map (creation interrupted)")
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		cfg, ok := declared[m.Name]
		if !ok {
			cfg = s.opts.DefaultStream
			cfg.Name = m.Name
		}
		cfg = cfg.WithDefaults()
		if m.RetentionMS > 0 && !ok {
			cfg.Retention = conf.Duration(time.Duration(m.RetentionMS) * time.Millisecond)
		}
		st, err := s.openStream(dir, m, cfg)
		if err != nil {
			return err
		}
		s.streams[m.Name] = st
		if ok {
			if err := st.applyDeclaredMode(cfg); err != nil {
				return err
			}
		}
	}
	for _, c := range s.opts.Streams {
		if _, ok := s.streams[c.Name]; ok {
			continue
		}
		if _, err := s.createStream(c.WithDefaults(), true); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) openStream(dir string, m streamMeta, cfg StreamConfig) (*Stream, error) {
	st := &Stream{store: s, name: m.Name, dir: dir, cfg: cfg, meta: m, shards: map[string]*Shard{}, mapCh: make(chan struct{})}
	if err := st.removeOrphans(); err != nil {
		return nil, err
	}
	if err := st.loadEncryption(); err != nil {
		return nil, err
	}
	if err := st.openLogs(); err != nil {
		st.close()
		return nil, err
	}
	// Make the log directory it may just have created durable.
	if err := fsutil.SyncDir(dir); err != nil {
		st.close()
		return nil, fmt.Errorf("shards: stream %s: sync dir: %w", m.Name, err)
	}
	st.refreshUsage(true, 0)
	st.rebuildOpenLocked()
	return st, nil
}

// Close stops retention, finishes commits in flight and closes every log.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.done.Wait()
	err := s.closeStreams()
	if s.opts.Registerer != nil {
		s.opts.Registerer.Unregister(s.walm)
	}
	if s.lock != nil {
		s.lock.Close()
	}
	return err
}

func (s *Store) closeStreams() error {
	var first error
	for _, st := range s.streams {
		if err := st.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Stream returns the named stream.
func (s *Store) Stream(name string) (*Stream, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	st, ok := s.streams[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, name)
	}
	return st, nil
}

// Streams lists the streams by name.
func (s *Store) Streams() []*Stream {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Stream, 0, len(s.streams))
	for _, st := range s.streams {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Checkpoints is the store of consumer registrations and positions.
func (s *Store) Checkpoints() *Checkpoints { return s.ckpts }

// Append stores one record in the named stream and returns after it is
// durable (or, with NoWait, after it is queued). This is the only way data
// enters weir: MQTT publishes and Kinesis PutRecord both come here.
func (s *Store) Append(ctx context.Context, stream string, rec *Record, o AppendOptions) (Appended, error) {
	st, err := s.Stream(stream)
	if err != nil {
		return Appended{}, err
	}
	return st.append(ctx, rec, o)
}

// AppendBatch stores records as PutRecords does, with an outcome per record.
func (s *Store) AppendBatch(ctx context.Context, stream string, recs []*Record, opts []AppendOptions) ([]Appended, []error) {
	st, err := s.Stream(stream)
	if err != nil {
		errs := make([]error, len(recs))
		for i := range errs {
			errs[i] = err
		}
		return make([]Appended, len(recs)), errs
	}
	return st.appendBatch(ctx, recs, opts)
}

// CreateStream creates a stream with cfg.Shards shards evenly dividing the
// hash space, in cfg.Mode; settings cfg leaves zero come from
// Options.DefaultStream.
func (s *Store) CreateStream(cfg StreamConfig) (*Stream, error) {
	base := s.opts.DefaultStream
	base.Name, base.Shards, base.Mode = cfg.Name, cfg.Shards, cfg.Mode
	// An API client asking for more shards than the template's ceiling
	// gets them; the autoscaler then only merges back to that floor.
	base.OnDemand.Defaults()
	base.OnDemand.MaxShards = max(base.OnDemand.MaxShards, cfg.Shards)
	if cfg.Retention.D() > 0 {
		base.Retention = cfg.Retention
	}
	return s.createStream(base.WithDefaults(), false)
}

func (s *Store) createStream(cfg StreamConfig, declared bool) (*Stream, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%w: stream %s: %v", ErrInvalidArgument, cfg.Name, errors.Join(errs...))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.streams[cfg.Name]; ok {
		return nil, fmt.Errorf("%w: %s", ErrStreamExists, cfg.Name)
	}
	m := streamMeta{Version: metaVersion, Name: cfg.Name, Created: s.now().UTC().Truncate(time.Millisecond), NextShard: cfg.Shards, Declared: declared, LogStart: 1}
	if cfg.Mode == ModeOnDemand {
		m.Mode, m.MinShards = ModeOnDemand, cfg.Shards
	}
	for i, r := range EvenRanges(cfg.Shards) {
		m.Shards = append(m.Shards, metaOf(ShardInfo{ID: shardID(i), StartHash: r[0], EndHash: r[1], StartSeq: 1}))
	}
	// Build under a hidden name and rename into place, so a crash leaves
	// either no stream or a whole one.
	tmp := s.streamDir("." + cfg.Name + ".creating")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("shards: create stream %s: %w", cfg.Name, err)
	}
	if err := writeMeta(s.opts.metaFS, tmp, m); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("shards: create stream %s: %w", cfg.Name, err)
	}
	dir := s.streamDir(cfg.Name)
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("shards: create stream %s: %w", cfg.Name, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("shards: create stream %s: %w", cfg.Name, err)
	}
	st, err := s.openStream(dir, m, cfg)
	if err != nil {
		return nil, err
	}
	s.streams[cfg.Name] = st
	s.log.Info().Str("stream", cfg.Name).Int("shards", cfg.Shards).Msg("stream created")
	return st, nil
}

// DeleteStream removes a stream and all its data.
func (s *Store) DeleteStream(name string) error {
	s.mu.Lock()
	st, ok := s.streams[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrStreamNotFound, name)
	}
	delete(s.streams, name)
	s.mu.Unlock()
	st.mu.Lock()
	st.deleted = true
	st.mu.Unlock()
	st.close()
	// Rename first: the rename is atomic, RemoveAll is not.
	gone := s.streamDir(fmt.Sprintf(".%s.deleted-%d", name, s.now().UnixNano()))
	if err := os.Rename(st.dir, gone); err != nil {
		return fmt.Errorf("shards: delete stream %s: %w", name, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(gone)); err != nil {
		return fmt.Errorf("shards: delete stream %s: %w", name, err)
	}
	s.ckpts.dropStream(name)
	return os.RemoveAll(gone)
}
