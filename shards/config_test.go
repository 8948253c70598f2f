package shards

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-gateway/weir/internal/conf"
)

func TestStreamConfigDefaults(t *testing.T) {
	c := StreamConfig{Name: "telemetry"}.WithDefaults()
	want := StreamConfig{
		Name: "telemetry", Shards: 4, MaxRecordSize: conf.MiB, Retention: conf.Duration(24 * time.Hour),
		SegmentSize: 16 * conf.MiB, OnFull: OnFullReject,
		Rate: RateConfig{RecordsPerSec: 1000, BytesPerSec: conf.MiB, OnLimit: OnLimitBackpress, MaxWait: conf.Duration(2 * time.Second)},
		OnDemand: OnDemandConfig{SplitAt: 0.8, SplitAfter: conf.Duration(30 * time.Second), MergeAt: 0.3,
			MergeAfter: conf.Duration(5 * time.Minute), Cooldown: conf.Duration(2 * time.Minute), MaxShards: 64},
	}
	if c != want {
		t.Fatalf("WithDefaults = %+v\nwant %+v", c, want)
	}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	// A rate block that says "reject, no record limit" keeps its zeros.
	r := RateConfig{OnLimit: OnLimitReject}.WithDefaults()
	if r.RecordsPerSec != 0 || r.BytesPerSec != 0 {
		t.Fatalf("explicit zero rates overridden: %+v", r)
	}
	if c.WithDefaults() != c {
		t.Fatal("WithDefaults is not idempotent")
	}
	d := Durability{}.WithDefaults()
	if d.Fsync != FsyncAlways || d.Interval.D() != 10*time.Millisecond || len(d.Validate()) != 0 {
		t.Fatalf("durability defaults %+v", d)
	}
}

func TestStreamConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*StreamConfig)
		want   []string
	}{
		{"valid_small", func(c *StreamConfig) {
			c.SegmentSize, c.MaxRecordSize, c.MaxBytes = 4*conf.KiB, 3*conf.KiB, 68*conf.KiB
		}, nil},
		{"empty_name", func(c *StreamConfig) { c.Name = "" }, []string{"name: must not be empty"}},
		{"bad_name", func(c *StreamConfig) { c.Name = "a/b" }, []string{`name: "a/b" is not a valid stream name`}},
		{"long_name", func(c *StreamConfig) { c.Name = strings.Repeat("a", 129) }, []string{"name:"}},
		{"shards", func(c *StreamConfig) { c.Shards = 2000 }, []string{"shards: must be 1..1024, got 2000"}},
		{"retention_short", func(c *StreamConfig) { c.Retention = conf.Duration(time.Millisecond) }, []string{"retention: must be 1s..8760h, got 1ms"}},
		{"retention_long", func(c *StreamConfig) { c.Retention = conf.Duration(8761 * time.Hour) }, []string{"retention: must be 1s..8760h"}},
		{"segment_small", func(c *StreamConfig) { c.SegmentSize = 1024 }, []string{"segment_size: must be 4KiB..1GiB, got 1KiB"}},
		{"record_too_big", func(c *StreamConfig) { c.MaxRecordSize = 11 * conf.MiB; c.SegmentSize = 64 * conf.MiB }, []string{"max_record_size: must be 1B..10MiB"}},
		{"record_vs_segment", func(c *StreamConfig) { c.SegmentSize = conf.MiB },
			[]string{"max_record_size: (1MiB) must leave 1KiB of headroom in segment_size (1MiB): raise segment_size to at least 1025KiB or lower max_record_size"}},
		{"max_bytes_small", func(c *StreamConfig) { c.MaxBytes = 64 * conf.MiB },
			[]string{"max_bytes: (64MiB) must be 0 (unlimited) or at least 5 × segment_size = 80MiB: it counts space allocated on disk"}},
		{"max_bytes_one_log", func(c *StreamConfig) {
			// Many shards need no more: they share the stream's log.
			c.Shards, c.SegmentSize, c.MaxRecordSize, c.MaxBytes = 64, 4*conf.KiB, 3*conf.KiB, 19*conf.KiB
		},
			[]string{"max_bytes: (19KiB) must be 0 (unlimited) or at least 5 × segment_size = 20KiB"}},
		{"on_full", func(c *StreamConfig) { c.OnFull = "drop" }, []string{`on_full: must be one of reject, drop_oldest, got "drop"`}},
		{"rate_negative", func(c *StreamConfig) { c.Rate.RecordsPerSec, c.Rate.BytesPerSec = -1, -1 },
			[]string{"rate.records_per_sec: must be >= 0", "rate.bytes_per_sec: must be >= 0"}},
		{"rate_on_limit", func(c *StreamConfig) { c.Rate.OnLimit = "wait" }, []string{`rate.on_limit: must be one of backpressure, reject, got "wait"`}},
		{"max_wait_zero", func(c *StreamConfig) { c.Rate.MaxWait = 0 }, []string{"rate.max_wait: must be > 0 when on_limit is backpressure"}},
		{"max_wait_zero_reject", func(c *StreamConfig) { c.Rate.MaxWait, c.Rate.OnLimit = 0, OnLimitReject }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := StreamConfig{Name: "s"}.WithDefaults()
			tc.mutate(&c)
			errs := c.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("Validate = %v, want %d errors", errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("[%d] = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestDurabilityValidate(t *testing.T) {
	tests := []struct {
		name string
		d    Durability
		want string
	}{
		{"always", Durability{Fsync: "always"}, ""},
		{"interval", Durability{Fsync: "interval", Interval: conf.Duration(time.Millisecond)}, ""},
		{"interval_zero", Durability{Fsync: "interval"}, "interval: must be > 0 when fsync is interval, got 0s"},
		{"bad_fsync", Durability{Fsync: "never", Interval: 1}, `fsync: must be one of always, interval, got "never"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.d.Validate()
			switch {
			case tc.want == "" && len(errs) != 0:
				t.Fatalf("Validate = %v", errs)
			case tc.want != "" && (len(errs) != 1 || errs[0].Error() != tc.want):
				t.Fatalf("Validate = %v, want %q", errs, tc.want)
			}
		})
	}
}
