package shards

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestFormatSeqLayout(t *testing.T) {
	got := FormatSeq("shardId-000000000007", 42)
	want := "2" + "000000000007" + "00000000000000000042"
	if got != want || len(got) != 33 {
		t.Fatalf("FormatSeq = %s, want %s", got, want)
	}
	if max := FormatSeq("shardId-000000000007", ^uint64(0)); max != "2000000000007"+"18446744073709551615" {
		t.Fatalf("max index: %s", max)
	}
}

// Numeric and string order agree, within a shard and across shards.
func TestFormatSeqOrder(t *testing.T) {
	seqs := []string{
		FormatSeq("shardId-000000000000", 1), FormatSeq("shardId-000000000000", 9),
		FormatSeq("shardId-000000000000", 10), FormatSeq("shardId-000000000001", 1),
		FormatSeq("shardId-000000000010", 0),
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i-1] >= seqs[i] {
			t.Errorf("%s !< %s", seqs[i-1], seqs[i])
		}
	}
}

func TestParseSeq(t *testing.T) {
	s0 := ShardInfo{ID: "shardId-000000000000", V1LastSeq: 5}
	s1 := ShardInfo{ID: "shardId-000000000001"}
	for _, tc := range []struct {
		info ShardInfo
		in   string
		want uint64
		err  string // "" = ok
	}{
		{s0, FormatSeq(s0.ID, 7), 7, ""},
		{s1, FormatSeq(s1.ID, 7), 7, ""},
		{s0, FormatSeq(s1.ID, 7), 0, "It encodes shardId-000000000001, while it was used in a call to a shard with shardId-000000000000"},
		{s0, "5", 5, ""},          // legacy, within v1 range
		{s0, "1", 1, ""},          // legacy
		{s0, "6", 0, "version 1"}, // legacy beyond v1 range
		{s0, "0", 0, "version 1"},
		{s1, "1", 0, "version 1"}, // shard made under v2: no legacy numbers
		{s0, "", 0, "invalid"},
		{s0, "007", 0, "invalid"},
		{s0, "x", 0, "invalid"},
		{s0, "18446744073709551616", 0, "invalid"},
		{s0, "3" + FormatSeq(s0.ID, 1)[1:], 0, "invalid"},        // unknown version
		{s0, FormatSeq(s0.ID, 1) + "0", 0, "invalid"},            // 34 digits
		{s0, "2000000000000999999999999999999999", 0, "invalid"}, // index overflows
	} {
		got, err := ParseSeq(tc.info, tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSeq(%s, %q) = %d, %v; want %d", tc.info.ID, tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSeq(%s, %q) err = %v; want ErrInvalidArgument containing %q", tc.info.ID, tc.in, err, tc.err)
		}
	}
}

func FuzzDecodeSeq(f *testing.F) {
	for _, s := range []string{"1", "0", FormatSeq("shardId-000000000003", 99), "18446744073709551615", "2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, idx, err := DecodeSeq(s)
		if err != nil {
			return
		}
		if sh < 0 {
			if len(s) > 20 {
				t.Fatalf("legacy %q has %d digits", s, len(s))
			}
			return
		}
		// A v2 number round-trips exactly.
		if back := FormatSeq(fmt.Sprintf("shardId-%012d", sh), idx); back != s {
			t.Fatalf("DecodeSeq(%q) = %d, %d; formats back as %q", s, sh, idx, back)
		}
	})
}
