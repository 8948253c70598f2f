package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/shards"
)

// BenchmarkGetRecords reads one shard of 200-byte records through
// GetRecords with the read limits off; one op is one call returning 10,000
// records, and MB/s counts record data. "sdk" decodes with aws-sdk-go-v2's
// Kinesis client (what an application sees); "http" only reads the body
// (what the gateway can serve).
func BenchmarkGetRecords(b *testing.B) {
	const (
		recordSize = 200
		perCall    = 10000
		preload    = 100_000
	)
	e := newEnv(b, envOptions{})
	if _, err := e.store.CreateStream(shards.StreamConfig{Name: "bench", Shards: 1, Rate: unlimitedRate}); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("d"), recordSize)
	batch := make([]*shards.Record, 500)
	for i := 0; i < preload; i += len(batch) {
		for j := range batch {
			batch[j] = &shards.Record{Key: fmt.Sprintf("device-%d", (i+j)%1000), Data: data}
		}
		if _, errs := e.store.AppendBatch(context.Background(), "bench", batch, nil); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
	start := func() *string {
		out, err := e.kc.GetShardIterator(context.Background(), &kinesis.GetShardIteratorInput{StreamName: aws.String("bench"),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			b.Fatal(err)
		}
		return out.ShardIterator
	}

	b.Run("sdk", func(b *testing.B) {
		b.SetBytes(perCall * recordSize)
		b.ReportAllocs()
		it := start()
		calls := 0
		for b.Loop() {
			out, err := e.kc.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(perCall)})
			if err != nil {
				b.Fatal(err)
			}
			if len(out.Records) != perCall {
				b.Fatalf("%d records", len(out.Records))
			}
			it = out.NextShardIterator
			if calls++; calls%(preload/perCall) == 0 {
				it = start()
			}
		}
	})

	b.Run("http", func(b *testing.B) {
		b.SetBytes(perCall * recordSize)
		b.ReportAllocs()
		it := *start()
		calls := 0
		for b.Loop() {
			body, _ := json.Marshal(map[string]any{"ShardIterator": it, "Limit": perCall})
			req, _ := http.NewRequest(http.MethodPost, e.hs.URL+"/", bytes.NewReader(body))
			req.Header.Set("Content-Type", contentTypeJSON)
			req.Header.Set("X-Amz-Target", kinesisPrefix+"GetRecords")
			resp, err := e.hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Only the tail: the next iterator and how far behind.
			var tail struct {
				NextShardIterator  string
				MillisBehindLatest int64
			}
			i := bytes.LastIndex(raw, []byte(`],"NextShardIterator"`))
			if resp.StatusCode != 200 || i < 0 {
				b.Fatalf("HTTP %d", resp.StatusCode)
			}
			if err := json.Unmarshal(append([]byte("{"), raw[i+2:]...), &tail); err != nil {
				b.Fatal(err)
			}
			it = tail.NextShardIterator
			if calls++; calls%(preload/perCall) == 0 {
				it = *start()
			}
		}
	})
}
