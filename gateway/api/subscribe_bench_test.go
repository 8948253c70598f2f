package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/weir-gateway/weir/shards"
)

// BenchmarkSubscribeLatency: publish → SubscribeToShard delivery at
// 10,000 records/s (a hundred publishers, one record each per 10 ms —
// each waits for its commit, as a QoS 1 device does — through the store's
// append with fsync always) with two fan-out
// consumers reading over h2c with aws-sdk-go-v2. Each record carries its
// publish time; the latency is its arrival in the consumer's event loop.
// One op is one second of publishing. ack-p99-ms is publish → durable
// (Append's return) in the same run: delivery cannot beat it, and the
// difference is what the push adds. Reports p50/p99/max, and the CPU
// the whole process used per 1,000 records delivered, and the load
// average (the machine is shared).
func BenchmarkSubscribeLatency(b *testing.B) {
	const (
		rate       = 10000
		publishers = 100
	)
	e := newEnv(b, envOptions{api: Config{Listen: "127.0.0.1:0"}})
	url := e.serve()
	if _, err := e.store.CreateStream(shards.StreamConfig{Name: "lat", Shards: 1, Rate: unlimitedRate}); err != nil {
		b.Fatal(err)
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		acks []time.Duration // publish → durable: the floor under delivery
		got  = map[string]int{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readers sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		arn := e.register("lat", name)
		out, err := sdkClient(url, h2cClient()).SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: &arn,
			ShardId: aws.String("shardId-000000000000"), StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
		if err != nil {
			b.Fatal(err)
		}
		es := out.GetStream()
		readers.Go(func() {
			defer es.Close()
			for v := range es.Events() {
				now := time.Now()
				ev, ok := v.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
				if !ok {
					continue
				}
				mu.Lock()
				for _, r := range ev.Value.Records {
					lats = append(lats, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Data)))))
				}
				got[name] += len(ev.Value.Records)
				mu.Unlock()
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // both subscriptions past their first event
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	sent := 0
	began := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		for range publishers {
			wg.Go(func() {
				tick := time.NewTicker(time.Second / (rate / publishers))
				defer tick.Stop()
				for range rate / publishers {
					<-tick.C
					data := binary.BigEndian.AppendUint64(make([]byte, 0, 100), uint64(time.Now().UnixNano()))
					data = append(data, bytes.Repeat([]byte("x"), 92)...)
					t0 := time.Now()
					if _, err := e.store.Append(context.Background(), "lat", &shards.Record{Key: "k", Data: data}, shards.AppendOptions{}); err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					acks = append(acks, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		sent += rate
	}
	b.ReportMetric(float64(sent)/time.Since(began).Seconds(), "published/s")
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := got["a"] == sent && got["b"] == sent
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cancel()
	readers.Wait()
	mu.Lock()
	defer mu.Unlock()
	if got["a"] != sent || got["b"] != sent {
		b.Fatalf("sent %d, consumers got %v", sent, got)
	}
	slices.Sort(lats)
	slices.Sort(acks)
	pctOf := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	pct := func(p float64) float64 { return pctOf(lats, p) }
	b.ReportMetric(pctOf(acks, 0.99), "ack-p99-ms")
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(cpu.Seconds()*1000/float64(len(lats)/1000), "cpu-ms/1k-delivered")
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average %s", strings.Fields(string(la))[0])
	}
}

// BenchmarkReadThroughput reads 200-byte records from a preloaded shard
// with GetRecords (10,000 per call) and with SubscribeToShard (one
// subscription to the end), each over HTTP/1.1 and h2c, read limits off.
// One op is one pass over the preload; MB/s counts record data; the
// clients only read and frame the bytes (raw HTTP, the smithy-go
// event-stream decoder), so the numbers are the gateway's.
//
// The h2c client is net/http's as aws-sdk-go-v2 uses it, defaults kept:
// it advertises the HTTP/2 default SETTINGS_MAX_FRAME_SIZE of 16 KiB (as
// Node's http2, the JS SDK's handler, does), so the server cuts a 1 MiB
// event into 64 DATA frames, each its own hand-off between the handler,
// the connection's serve goroutine and its writer. h2c-1MiB-frames is the
// same client advertising 1 MiB frames: the difference is what the
// client's frame size costs, which the server cannot choose.
func BenchmarkReadThroughput(b *testing.B) {
	const (
		recordSize = 200
		preload    = 100_000
	)
	e := newEnv(b, envOptions{api: Config{Listen: "127.0.0.1:0"}})
	url := e.serve()
	if _, err := e.store.CreateStream(shards.StreamConfig{Name: "tp", Shards: 1, Rate: unlimitedRate}); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("d"), recordSize)
	batch := make([]*shards.Record, 500)
	for i := 0; i < preload; i += len(batch) {
		for j := range batch {
			batch[j] = &shards.Record{Key: fmt.Sprintf("device-%d", (i+j)%1000), Data: data}
		}
		if _, errs := e.store.AppendBatch(context.Background(), "tp", batch, nil); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
	arn := e.register("tp", "bench")
	h1 := &http.Client{Transport: &http.Transport{}}
	for _, c := range []struct {
		name string
		hc   *http.Client
	}{{"http1", h1}, {"h2c", h2cClient()}, {"h2c-1MiB-frames", bigFrames(h2cClient())}} {
		post := func(target string, body string) *http.Response {
			req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
			req.Header.Set("Content-Type", contentTypeJSON)
			req.Header.Set("X-Amz-Target", kinesisPrefix+target)
			resp, err := c.hc.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%s: %v %v", target, err, resp)
			}
			return resp
		}
		b.Run("GetRecords/"+c.name, func(b *testing.B) {
			b.SetBytes(preload * recordSize)
			for b.Loop() {
				resp := post("GetShardIterator", `{"StreamName":"tp","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`)
				var it struct{ ShardIterator string }
				decodeJSON(b, resp, &it)
				next := it.ShardIterator
				for n := 0; n < preload; {
					resp := post("GetRecords", `{"ShardIterator":"`+next+`"}`)
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					n += bytes.Count(raw, []byte(`"SequenceNumber"`))
					i := bytes.LastIndex(raw, []byte(`"NextShardIterator":"`))
					if i < 0 {
						b.Fatal("no NextShardIterator")
					}
					rest := raw[i+len(`"NextShardIterator":"`):]
					next = string(rest[:bytes.IndexByte(rest, '"')])
				}
			}
		})
		b.Run("SubscribeToShard/"+c.name, func(b *testing.B) {
			b.SetBytes(preload * recordSize)
			for b.Loop() {
				e.clock.Advance(takeoverAfter)
				resp := post("SubscribeToShard", `{"ConsumerARN":"`+arn+`","ShardId":"shardId-000000000000","StartingPosition":{"Type":"TRIM_HORIZON"}}`)
				dec := eventstreamDecoder()
				var buf []byte
				for n := 0; n < preload; {
					msg, err := dec.Decode(resp.Body, buf[:0])
					if err != nil {
						b.Fatal(err)
					}
					buf = msg.Payload
					n += bytes.Count(msg.Payload, []byte(`"SequenceNumber"`))
				}
				resp.Body.Close()
			}
		})
	}
}

// bigFrames makes an HTTP/2 client accept DATA frames up to 1 MiB.
func bigFrames(hc *http.Client) *http.Client {
	hc.Transport.(*http.Transport).HTTP2 = &http.HTTP2Config{MaxReadFrameSize: 1 << 20}
	return hc
}
