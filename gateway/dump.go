package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// RecordLine is how `weir dump` and `weir read` print a record: one JSON
// object per line.
type RecordLine struct {
	Shard    string                `json:"shard"`
	Seq      string                `json:"seq"`
	Key      string                `json:"key"`
	Topic    string                `json:"topic,omitempty"`
	ClientID string                `json:"client_id,omitempty"`
	TS       string                `json:"ts"`
	QoS      byte                  `json:"qos"`
	Props    []shards.UserProperty `json:"props,omitempty"`
	Data     []byte                `json:"data"`
}

// LineOf renders a stored record.
func LineOf(shard string, r shards.Record) RecordLine {
	return RecordLine{Shard: shard, Seq: shards.FormatSeq(shard, r.Seq), Key: r.Key, Topic: r.Topic, ClientID: r.ClientID,
		TS: FormatTS(time.UnixMilli(r.Arrival)), QoS: r.QoS, Props: r.Props, Data: r.Data}
}

// FormatTS renders an arrival time as RFC 3339 with milliseconds, in UTC.
func FormatTS(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// Dump prints every stored record of a stream (or of one shard) from a
// stopped gateway's data directory, shard by shard in id order so parents
// come before children. It takes the data directory's lock, so it refuses
// to run beside a live gateway rather than read a log being written.
// keysDir is the gateway's encryption.keys_dir, needed for records of
// encrypted streams ("" if there are none).
func Dump(w io.Writer, log zerolog.Logger, dataDir, keysDir, stream, shard string) error {
	store, err := shards.Open(dataDir, shards.Options{Logger: log, NoRetentionLoop: true, OpenExistingOnly: true, KeysDir: keysDir})
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Stream(stream)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	found := false
	for _, info := range st.Shards() {
		if shard != "" && info.ID != shard {
			continue
		}
		found = true
		sh, err := st.Shard(info.ID)
		if err != nil {
			return err
		}
		for from := sh.TrimHorizon(); from <= sh.Last(); {
			recs, next, err := sh.Read(from, 1000, 4<<20)
			if err != nil {
				return err
			}
			if next <= from {
				break
			}
			for _, r := range recs {
				if err := enc.Encode(LineOf(info.ID, r)); err != nil {
					return err
				}
			}
			from = next
		}
	}
	if !found {
		return fmt.Errorf("%w: %s in stream %s", shards.ErrShardNotFound, shard, stream)
	}
	return bw.Flush()
}
