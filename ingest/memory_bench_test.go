package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// The idle-device footprint is measured with the devices in a child
// process (this test binary re-executed), so that the client sockets and
// their buffers are not counted against the broker.
const (
	idleClientsAddrEnv = "WEIR_INGEST_IDLE_CLIENTS_ADDR"
	idleClientsNEnv    = "WEIR_INGEST_IDLE_CLIENTS_N"
	// idlePublishEnv makes each client publish one QoS 1 message first,
	// as a real device would before going quiet.
	idlePublishEnv = "WEIR_INGEST_IDLE_PUBLISH"
)

// runIdleClientsChild is the child: it connects N raw MQTT 3.1.1 clients,
// prints "ready" once every CONNACK is in, and holds them until stdin
// closes. It returns false when this process is not the child.
func runIdleClientsChild() bool {
	addr := os.Getenv(idleClientsAddrEnv)
	if addr == "" {
		return false
	}
	n, err := strconv.Atoi(os.Getenv(idleClientsNEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad client count:", err)
		os.Exit(2)
	}
	publish := os.Getenv(idlePublishEnv) != ""
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := connectIdle(addr, fmt.Sprintf("idle-%06d", i), publish)
				if err != nil {
					errs <- err
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
	return true
}

// connectIdle sends a minimal CONNECT (keepalive 300 s, so no PINGREQ is
// due while measuring) and waits for a successful CONNACK; with publish it
// then publishes one routed QoS 1 message and waits for its PUBACK.
func connectIdle(addr, id string, publish bool) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect:         packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 300, ClientIdentifier: id},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		return nil, fmt.Errorf("%s: CONNACK: %w", id, err)
	}
	if ack[0] != packets.Connack<<4 || ack[3] != 0 {
		return nil, fmt.Errorf("%s: CONNACK % x", id, ack)
	}
	if publish {
		buf.Reset()
		pub := packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
			ProtocolVersion: 4,
			TopicName:       "devices/" + id + "/telemetry",
			PacketID:        1,
			Payload:         bytes.Repeat([]byte("x"), 200),
		}
		if err := pub.PublishEncode(&buf); err != nil {
			return nil, err
		}
		if _, err := c.Write(buf.Bytes()); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, ack); err != nil {
			return nil, fmt.Errorf("%s: PUBACK: %w", id, err)
		}
		if ack[0] != packets.Puback<<4 {
			return nil, fmt.Errorf("%s: PUBACK % x", id, ack)
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// discardSink accepts and forgets records, so that stored data is not
// counted as client cost.
type discardSink struct{}

func (discardSink) Append(context.Context, string, *shards.Record, shards.AppendOptions) (shards.Appended, error) {
	return shards.Appended{}, nil
}

// footprint is what n idle clients cost the broker process.
type footprint struct {
	heapStackPerClient float64 // bytes: (HeapInuse + StackInuse) delta / n
	stackPerClient     float64 // bytes: StackInuse delta / n (goroutine stacks)
	rssPerClient       float64 // bytes: resident set delta / n
}

// memSample is the process's memory after forced collections. Each GC
// halves at most once the stack of a goroutine using under a quarter of
// it, so the three here bring a stack grown to 16 KiB by a publish down
// to the smallest size its idle frames allow.
type memSample struct {
	heapStack, stack, rss uint64
}

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heapStack: m.HeapInuse + m.StackInuse, stack: m.StackInuse, rss: residentBytes()}
}

func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// measureIdle connects n clients from a child process to addr and returns
// the broker-side cost; connected reports how many the broker holds.
func measureIdle(tb testing.TB, addr string, n int, publish bool, connected func() int) footprint {
	tb.Helper()
	m0 := memNow()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), idleClientsAddrEnv+"="+addr, idleClientsNEnv+"="+strconv.Itoa(n))
	if publish {
		cmd.Env = append(cmd.Env, idlePublishEnv+"=1")
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		tb.Fatalf("child: %q, %v", line, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for connected() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("broker holds %d clients, want %d", connected(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let connection goroutines park
	m1 := memNow()
	perClient := func(v0, v1 uint64) float64 { return (float64(v1) - float64(v0)) / float64(n) }
	return footprint{
		heapStackPerClient: perClient(m0.heapStack, m1.heapStack),
		stackPerClient:     perClient(m0.stack, m1.stack),
		rssPerClient:       perClient(m0.rss, m1.rss),
	}
}

func reportFootprint(b *testing.B, f footprint) {
	b.ReportMetric(f.heapStackPerClient/1024, "KiB/client")
	b.ReportMetric(f.stackPerClient/1024, "stack-KiB/client")
	b.ReportMetric(f.rssPerClient/1024, "RSS-KiB/client")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleClientMemory measures what an idle connected device costs
// the broker at 5,000 devices: Go heap and stacks in use (KiB/client), the
// goroutine stacks alone (stack-KiB/client) and resident set growth
// (RSS-KiB/client), all after forced GCs. "connected" devices only
// connected; "published" devices also published one QoS 1 message first,
// which grows mochi's read goroutine stack to 16 KiB until GCs shrink it
// (to 4 KiB with the patched mochi in third_party/mochi-mqtt-server; it
// stayed at 16 KiB with upstream v2.7.9). bare-mochi is that same patched
// mochi with its defaults, for comparison (its KiB/client includes a
// 64 KiB outbound queue per client that is allocated but never touched,
// so not resident). Target: ≤ 16 KiB.
//
//	go test -run '^$' -bench IdleClientMemory -benchtime 1x ./ingest/
func BenchmarkIdleClientMemory(b *testing.B) {
	const n = 5000
	for _, publish := range []bool{false, true} {
		state := "connected"
		if publish {
			state = "published"
		}
		b.Run(fmt.Sprintf("weir/%s/clients=%d", state, n), func(b *testing.B) {
			for range b.N {
				br, err := New(testConfig(), []Route{{Filter: "#", Stream: "s"}}, discardSink{}, Options{Logger: zerolog.Nop()})
				if err != nil {
					b.Fatal(err)
				}
				if err := br.Start(); err != nil {
					b.Fatal(err)
				}
				f := measureIdle(b, br.Addr().String(), n, publish, func() int {
					return int(atomic.LoadInt64(&br.server.Info.ClientsConnected))
				})
				reportFootprint(b, f)
				if err := br.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("bare-mochi/%s/clients=%d", state, n), func(b *testing.B) {
			for range b.N {
				s := mqtt.New(&mqtt.Options{Logger: newMochiLogger(zerolog.Nop())})
				_ = s.AddHook(new(auth.AllowHook), nil)
				ln := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
				if err := s.AddListener(ln); err != nil {
					b.Fatal(err)
				}
				if err := s.Serve(); err != nil {
					b.Fatal(err)
				}
				f := measureIdle(b, ln.Address(), n, publish, func() int {
					return int(atomic.LoadInt64(&s.Info.ClientsConnected))
				})
				reportFootprint(b, f)
				_ = s.Close()
			}
		})
	}
}

// TestIdleClientStacksStaySmall guards the patched mochi in
// third_party/mochi-mqtt-server (PATCHES.md): an idle device's two
// goroutines must park in small stacks, even after a publish has grown
// the read loop's. Upstream mochi keeps 20 KiB of stack per client here,
// the patch 6 KiB; losing the patch (an upgrade that drops it, a
// replace line gone from go.mod) fails this test.
func TestIdleClientStacksStaySmall(t *testing.T) {
	const n = 300
	br, err := New(testConfig(), []Route{{Filter: "#", Stream: "s"}}, discardSink{}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(); err != nil {
		t.Fatal(err)
	}
	defer br.Close(context.Background())
	f := measureIdle(t, br.Addr().String(), n, true, func() int {
		return int(atomic.LoadInt64(&br.server.Info.ClientsConnected))
	})
	// Measured: 6.3 KiB patched vs 20.1 upstream; with -race, whose
	// instrumentation enlarges frames, 12.2 vs 24.3.
	limit := 10.0
	if raceEnabled {
		limit = 18
	}
	kib := f.stackPerClient / 1024
	t.Logf("%.1f KiB of goroutine stack per idle client (limit %.0f)", kib, limit)
	if kib > limit {
		t.Fatalf("%.1f KiB of goroutine stack per idle client, want ≤ %.0f KiB (upstream mochi: 20 KiB, 24 with -race; is the patched mochi in use?)", kib, limit)
	}
}
