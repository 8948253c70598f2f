package forwarder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weir-gateway/weir/forwarder/s3sink"
	"github.com/weir-gateway/weir/integration/faultproxy"
	"github.com/weir-gateway/weir/integration/s3rver"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

func s3Cfg(endpoint, bucket, compression string) Config {
	return Config{Stream: "telemetry", Kind: KindS3, Name: "archive", S3: s3sink.Config{
		Bucket: bucket, Endpoint: endpoint, Compression: compression,
		// The smallest objects and the shortest age, so that a few
		// thousand records make dozens of objects.
		MaxObjectBytes: 1 << 10, MaxObjectAge: conf.Duration(time.Second),
	}}.WithDefaults()
}

func s3Opts(t testing.TB) Options {
	o := testOpts(t, nil)
	o.LoadOptions = []func(*config.LoadOptions) error{
		config.WithCredentialsProvider(s3rver.Credentials), config.WithRegion(s3rver.Region),
	}
	return o
}

// checkArchive reads the bucket back and checks it against what the
// shards hold: every record in exactly one object, the one named after
// the first record of its run (as the sink's Writer names it); each
// shard's objects contiguous (no gap, no overlap) from its first record;
// every key's records in order. It returns the objects.
func checkArchive(t *testing.T, cli *s3.Client, cfg Config, src *memSource, keys []string, perKey int) []s3sink.StoredObject {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objs, err := s3sink.ReadAll(ctx, cli, cfg.S3.Bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	namer, err := s3sink.New(ctx, cfg.S3, s3sink.Options{Gateway: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer namer.Close()
	byShard := map[string][]s3sink.StoredObject{}
	for _, o := range objs {
		sh := o.Metadata["shard"]
		if want := namer.Key(s3sink.Object{Stream: cfg.Stream, Shard: sh, Records: o.Records}); o.Key != want {
			t.Errorf("object %s holds records from %d: it should be named %s", o.Key, o.Records[0].Seq, want)
		}
		byShard[sh] = append(byShard[sh], o)
	}
	next := map[string]int{}
	for id, list := range byShard {
		slices.SortFunc(list, func(a, b s3sink.StoredObject) int { return int(a.Records[0].Seq) - int(b.Records[0].Seq) })
		want := uint64(1) // memShard's first seq
		for _, o := range list {
			for _, r := range o.Records {
				if r.Seq != want {
					t.Fatalf("shard %s: object %s has seq %d where %d was next (gap or overlap)", id, o.Key, r.Seq, want)
				}
				want++
				k, _, _ := strings.Cut(string(r.Data), "|")
				if r.Key != k || string(r.Data) != string(payload(k, next[k])) {
					t.Fatalf("shard %s seq %d: key %s data %q, want %q (order broken)", id, r.Seq, r.Key, r.Data, payload(k, next[k]))
				}
				next[k]++
			}
		}
		if last := src.shard(id).Last(); want-1 != last {
			t.Errorf("shard %s: archived up to %d, the shard ends at %d", id, want-1, last)
		}
	}
	for _, k := range keys {
		if next[k] != perKey {
			t.Errorf("key %s: %d records archived, want %d", k, next[k], perKey)
		}
	}
	return objs
}

// decodeWithTool runs the Debian tool (gzip -d, zstd -d) over one object
// as stored and checks that it yields the object's records as jsonl lines.
func decodeWithTool(t *testing.T, cli *s3.Client, bucket string, o s3sink.StoredObject, tool ...string) {
	t.Helper()
	got, err := cli.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Key)})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), filepath.Base(o.Key))
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool[0], append(tool[1:], "-c", file)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", strings.Join(tool, " "), o.Key, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		var l s3sink.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s output line %d: %v", tool[0], n, err)
		}
		if n >= len(o.Records) || l.Seq != shards.FormatIndex(o.Records[n].Seq) || !bytes.Equal(l.Data, o.Records[n].Data) {
			t.Fatalf("%s output line %d = %+v, want record %d of %s", tool[0], n, l, n, o.Key)
		}
		n++
	}
	if n != len(o.Records) {
		t.Fatalf("%s gave %d lines, the object holds %d records", tool[0], n, len(o.Records))
	}
}

// The s3 sink against a real S3 emulator (s3rver) behind the fault proxy:
// records written before, during and after an outage of the store all end
// up in the bucket, each in exactly the object named for its run, and the
// objects decode with the standard tools.
func TestS3SinkLedgerAcrossStoreOutage(t *testing.T) {
	for _, tc := range []struct {
		compression string
		tool        []string
	}{
		{s3sink.CompressionGzip, []string{"gzip", "-d"}},
		{s3sink.CompressionZstd, []string{"zstd", "-d", "-q"}},
	} {
		t.Run(tc.compression, func(t *testing.T) {
			store := s3rver.Start(t, "archive")
			proxy, err := faultproxy.New(store.Endpoint, 3)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { proxy.Close() })
			cfg := s3Cfg(proxy.URL(), "archive", tc.compression)
			src := newMemSource("shardId-000000000000", "shardId-000000000001")
			ck := newMemCkpt()
			f, err := New(cfg, src, ck, s3Opts(t))
			if err != nil {
				t.Fatal(err)
			}
			keys := []string{"a", "b", "c", "d", "e", "f"}
			shs := []*memShard{src.shard("shardId-000000000000"), src.shard("shardId-000000000001")}
			const perKey = 240
			writeRecords(shs, keys, 0, perKey/3)
			stop := start(t, f)
			waitFor(t, 20*time.Second, "the first third archived", func() bool { return f.Lag().Sent == int64(perKey/3*len(keys)) })

			proxy.Update(func(fl *faultproxy.Faults) { fl.Down = true })
			writeRecords(shs, keys, perKey/3, 2*perKey/3)
			waitFor(t, 10*time.Second, "backoff while the store is down", func() bool { return f.Lag().State.Phase == Backoff })
			if lag := f.Lag(); lag.Sent != int64(perKey/3*len(keys)) || lag.Records == 0 {
				t.Fatalf("lag during the outage %+v", lag)
			}
			got, _ := ck.Get("telemetry", "forwarder:archive")
			// Checkpoints trail acknowledgements by up to CommitInterval;
			// they never pass what the store holds.
			if held := uint64(perKey / 3 * len(keys) / 2); got["shardId-000000000000"] > held || got["shardId-000000000001"] > held {
				t.Errorf("checkpoints moved past what the store holds: %v, the store holds up to %d each", got, held)
			}
			time.Sleep(500 * time.Millisecond)
			proxy.Update(func(fl *faultproxy.Faults) { fl.Down = false })
			for n := 2 * perKey / 3; n < perKey; n += 20 {
				writeRecords(shs, keys, n, n+20)
				time.Sleep(50 * time.Millisecond)
			}
			waitFor(t, 30*time.Second, "every record archived", func() bool { return f.Lag().Sent == int64(perKey*len(keys)) })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if c := proxy.Counters(); c.Refused == 0 {
				t.Errorf("the outage refused no connection: %+v", c)
			}
			lag := f.Lag()
			if lag.Records != 0 || lag.Lost != 0 {
				t.Errorf("lag %+v", lag)
			}
			got, _ = ck.Get("telemetry", "forwarder:archive")
			if want := uint64(perKey * len(keys) / 2); got["shardId-000000000000"] != want || got["shardId-000000000001"] != want {
				t.Errorf("checkpoints %v, want %d each", got, want)
			}
			cli := s3rver.NewClient(store.Endpoint)
			objs := checkArchive(t, cli, cfg, src, keys, perKey)
			if len(objs) < 10 {
				t.Errorf("%d objects: the size hint did not cut the runs", len(objs))
			}
			if c := objs[0].Metadata["compression"]; c != tc.compression {
				t.Errorf("object metadata says compression %q", c)
			}
			decodeWithTool(t, cli, cfg.S3.Bucket, objs[len(objs)/2], tc.tool...)
			t.Logf("%d objects, %d resent", len(objs), lag.Resent)
		})
	}
}

// A bucket that does not exist pauses the sink with NoSuchBucket and the
// fix in its state, sends nothing and drops nothing; once the bucket is
// created, a probe succeeds and everything is archived.
func TestS3SinkPausesOnNoSuchBucketAndResumes(t *testing.T) {
	store := s3rver.Start(t)
	cfg := s3Cfg(store.Endpoint, "late", s3sink.CompressionNone)
	src := newMemSource("shardId-000000000000")
	f, err := New(cfg, src, newMemCkpt(), s3Opts(t))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"k1", "k2", "k3"}
	writeRecords([]*memShard{src.shard("shardId-000000000000")}, keys, 0, 100)
	start(t, f)
	waitFor(t, 10*time.Second, "paused", func() bool { return f.Lag().State.Phase == Paused })
	lag := f.Lag()
	if !strings.HasPrefix(lag.State.Reason, "NoSuchBucket: the bucket does not exist") {
		t.Errorf("paused with reason %q", lag.State.Reason)
	}
	if lag.Sent != 0 || lag.Records != 300 || lag.Lost != 0 || !strings.Contains(lag.LastError, "NoSuchBucket") {
		t.Fatalf("paused lag %+v", lag)
	}
	cli := s3rver.NewClient(store.Endpoint)
	if _, err := cli.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("late")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resumed and archived", func() bool { return f.Lag().Sent == 300 })
	if st := f.Lag().State; st.Phase != Running {
		t.Errorf("state after the bucket exists: %q", st)
	}
	checkArchive(t, cli, cfg, src, keys, 100)
}
