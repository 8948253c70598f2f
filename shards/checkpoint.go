package shards

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/weir-gateway/weir/internal/fsutil"
)

// ConsumerInfo describes a registered consumer of a stream.
type ConsumerInfo struct {
	Stream  string
	Name    string
	ARN     string
	Created time.Time
	Status  string
}

// Checkpoints is the one store of consumer registrations and positions for
// every reader: Kinesis API consumers, `weir read --consumer` and the
// forwarders (whose checkpoint is their low watermark). Each consumer is one
// small file rewritten atomically on every commit, so a crash leaves its
// previous position or its new one, never garbage.
type Checkpoints struct {
	dir   string
	fs    fsutil.Steps
	clock func() time.Time

	mu    sync.Mutex
	files map[string]*ckptFile // by stream/consumer, loaded lazily
}

type ckptFile struct {
	mu   sync.Mutex
	path string
	data ckptData
}

type ckptData struct {
	Version  int               `json:"version"`
	Stream   string            `json:"stream"`
	Consumer string            `json:"consumer"`
	Created  time.Time         `json:"created"`
	Shards   map[string]uint64 `json:"shards"`
	Lost     int64             `json:"lost,omitempty"` // records retention deleted before this consumer read them
}

// ForwarderPrefix marks the consumer names that forwarders use; they exist
// without registration.
const ForwarderPrefix = "forwarder:"

func (c *Checkpoints) path(stream, consumer string) string {
	return filepath.Join(c.dir, url.PathEscape(stream), url.PathEscape(consumer)+".json")
}

// file returns the consumer's checkpoint file, loading it from disk once.
// A missing file yields nil unless create is set.
func (c *Checkpoints) file(stream, consumer string, create bool) (*ckptFile, error) {
	key := stream + "\x00" + consumer
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.files[key]; ok {
		return f, nil
	}
	f := &ckptFile{path: c.path(stream, consumer)}
	b, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !create {
			return nil, nil
		}
		f.data = ckptData{Version: 1, Stream: stream, Consumer: consumer, Created: c.clock().UTC().Truncate(time.Millisecond), Shards: map[string]uint64{}}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return nil, err
		}
		if err := c.write(f); err != nil {
			return nil, err
		}
		// checkpoints/<stream>/ and checkpoints/ may both be new.
		for _, d := range []string{c.dir, filepath.Dir(c.dir)} {
			if err := fsutil.SyncDir(d); err != nil {
				return nil, err
			}
		}
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &f.data); err != nil {
			return nil, fmt.Errorf("shards: checkpoint file %s is damaged: %w", f.path, err)
		}
		if f.data.Version != 1 {
			// A newer weir wrote it: refuse rather than misread it.
			return nil, fmt.Errorf("shards: checkpoint file %s: unknown version %d", f.path, f.data.Version)
		}
		if f.data.Shards == nil {
			f.data.Shards = map[string]uint64{}
		}
	}
	c.files[key] = f
	return f, nil
}

func (c *Checkpoints) write(f *ckptFile) error {
	b, err := json.Marshal(f.data)
	if err != nil {
		return err
	}
	return fsutil.WriteFileSteps(c.fs, f.path, b, 0o644)
}

func (c *Checkpoints) info(d ckptData) ConsumerInfo {
	return ConsumerInfo{Stream: d.Stream, Name: d.Consumer, Created: d.Created, Status: "ACTIVE",
		ARN: fmt.Sprintf("arn:aws:kinesis:local:000000000000:stream/%s/consumer/%s:%d", d.Stream, d.Consumer, d.Created.Unix())}
}

// Register creates a consumer of stream.
func (c *Checkpoints) Register(stream, name string) (ConsumerInfo, error) {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, "/\x00") {
		return ConsumerInfo{}, fmt.Errorf("%w: consumer name %q", ErrInvalidArgument, name)
	}
	if f, err := c.file(stream, name, false); err != nil {
		return ConsumerInfo{}, err
	} else if f != nil {
		return c.info(f.data), fmt.Errorf("%w: %s on %s", ErrConsumerExists, name, stream)
	}
	f, err := c.file(stream, name, true)
	if err != nil {
		return ConsumerInfo{}, err
	}
	return c.info(f.data), nil
}

// Deregister removes a consumer and its checkpoints.
func (c *Checkpoints) Deregister(stream, name string) error {
	f, err := c.file(stream, name, false)
	if err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("%w: %s on %s", ErrConsumerNotFound, name, stream)
	}
	c.mu.Lock()
	delete(c.files, stream+"\x00"+name)
	c.mu.Unlock()
	if err := os.Remove(f.path); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(f.path))
}

// Consumer returns a registered consumer.
func (c *Checkpoints) Consumer(stream, name string) (ConsumerInfo, error) {
	f, err := c.file(stream, name, false)
	if err != nil {
		return ConsumerInfo{}, err
	}
	if f == nil {
		return ConsumerInfo{}, fmt.Errorf("%w: %s on %s", ErrConsumerNotFound, name, stream)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return c.info(f.data), nil
}

// Consumers lists the consumers of a stream, forwarders included, by name.
func (c *Checkpoints) Consumers(stream string) []ConsumerInfo {
	entries, _ := os.ReadDir(filepath.Join(c.dir, url.PathEscape(stream)))
	var out []ConsumerInfo
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		name, err := url.PathUnescape(name)
		if err != nil {
			continue
		}
		if info, err := c.Consumer(stream, name); err == nil {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Commit records that consumer has processed shardID up to and including
// seq. It returns once the position is durable. Forwarders need no
// registration.
func (c *Checkpoints) Commit(stream, consumer, shardID string, seq uint64) error {
	f, err := c.file(stream, consumer, strings.HasPrefix(consumer, ForwarderPrefix))
	if err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("%w: %s on %s", ErrConsumerNotFound, consumer, stream)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, had := f.data.Shards[shardID]
	f.data.Shards[shardID] = seq
	if err := c.write(f); err != nil {
		if had {
			f.data.Shards[shardID] = prev
		} else {
			delete(f.data.Shards, shardID)
		}
		return fmt.Errorf("shards: commit checkpoint %s/%s: %w", stream, consumer, err)
	}
	return nil
}

// Get returns the consumer's positions by shard id.
func (c *Checkpoints) Get(stream, consumer string) (map[string]uint64, error) {
	f, err := c.file(stream, consumer, false)
	if err != nil {
		return nil, err
	}
	if f == nil {
		if strings.HasPrefix(consumer, ForwarderPrefix) {
			return map[string]uint64{}, nil
		}
		return nil, fmt.Errorf("%w: %s on %s", ErrConsumerNotFound, consumer, stream)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]uint64, len(f.data.Shards))
	for k, v := range f.data.Shards {
		out[k] = v
	}
	return out, nil
}

// Lost returns how many records retention deleted before the consumer read
// them, over its lifetime.
func (c *Checkpoints) Lost(stream, consumer string) int64 {
	f, err := c.file(stream, consumer, false)
	if err != nil || f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.data.Lost
}

// unreadBelow counts, per consumer of stream, the records of shardID in
// [from, upTo) that it has not processed yet; count(a, b) is how many of
// the shard's records have a sequence number in [a, b).
func (c *Checkpoints) unreadBelow(stream, shardID string, from, upTo uint64, count func(a, b uint64) uint64) map[string]uint64 {
	out := map[string]uint64{}
	for _, ci := range c.Consumers(stream) {
		pos, err := c.Get(stream, ci.Name)
		if err != nil {
			continue
		}
		next := from
		if p, ok := pos[shardID]; ok && p+1 > next {
			next = p + 1
		}
		if next < upTo {
			out[ci.Name] = count(next, upTo)
		}
	}
	return out
}

func (c *Checkpoints) addLost(stream, consumer string, n int64) {
	f, err := c.file(stream, consumer, false)
	if err != nil || f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data.Lost += n
	_ = c.write(f) // best effort: the count is a report, the loss already happened
}

// dropStream forgets every consumer of a deleted stream.
func (c *Checkpoints) dropStream(stream string) {
	c.mu.Lock()
	for k := range c.files {
		if strings.HasPrefix(k, stream+"\x00") {
			delete(c.files, k)
		}
	}
	c.mu.Unlock()
	os.RemoveAll(filepath.Join(c.dir, url.PathEscape(stream)))
}
