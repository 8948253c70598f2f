package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway"
	"github.com/weir-gateway/weir/gateway/config"
	"github.com/weir-gateway/weir/shards"
)

// testGateway is an in-process daemon on free loopback ports with its
// data in a temporary directory.
type testGateway struct {
	t   *testing.T
	d   *gateway.Daemon
	dir string
	api string
}

type gatewayOptions struct {
	streams    []shards.StreamConfig
	forwarders []forwarder.Config
}

func startGateway(t *testing.T, o gatewayOptions) *testGateway {
	t.Helper()
	return startGatewayIn(t, t.TempDir(), o)
}

// startGatewayIn is startGateway on a given (possibly restored) data dir.
func startGatewayIn(t *testing.T, dataDir string, o gatewayOptions) *testGateway {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Durability = shards.Durability{Fsync: shards.FsyncAlways}
	for _, s := range o.streams {
		cfg.Streams = append(cfg.Streams, s.WithDefaults())
	}
	cfg.Forwarders = o.forwarders
	d, err := gateway.Start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{t: t, d: d, dir: cfg.DataDir, api: "http://" + d.APIAddr().String()}
	t.Cleanup(g.close)
	return g
}

func (g *testGateway) close() {
	if g.d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.d.Close(ctx); err != nil {
		g.t.Errorf("close gateway: %v", err)
	}
	g.d = nil
}

// publish appends n records with keys key0..key(keys-1); each record's
// data is "<key>:<running count of that key>".
func (g *testGateway) publish(stream string, n, keys int, counts map[string]int) {
	g.t.Helper()
	for i := range n {
		k := fmt.Sprintf("key%d", i%keys)
		rec := &shards.Record{Key: k, Data: fmt.Appendf(nil, "%s:%d", k, counts[k]),
			Topic: "devices/" + k + "/telemetry", ClientID: k, QoS: 1}
		counts[k]++
		if _, err := g.d.Store().Append(context.Background(), stream, rec, shards.AppendOptions{}); err != nil {
			g.t.Fatal(err)
		}
	}
}

// weir runs the CLI in-process and returns stdout, stderr and the exit code.
func weir(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
