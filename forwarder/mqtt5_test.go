package forwarder

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
	"github.com/weir-gateway/weir/internal/conf"
	"github.com/weir-gateway/weir/shards"
)

// v5Format prints topic, payload and user properties (mosquitto_sub -F).
const v5Format = "%t %p %P"

// waitSubscribed publishes probes to topic until sub prints one.
func waitSubscribed(t *testing.T, br *mosquittoBroker, pki *harness.PKI, sub *subscriber, topic string) {
	t.Helper()
	probe := pki.Client("probe", harness.Identity{CN: "probe"})
	waitFor(t, 10*time.Second, "subscriber ready", func() bool {
		_ = exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(br.port), "--cafile", pki.CAFile,
			"--cert", probe.CertFile, "--key", probe.KeyFile, "--insecure", "-q", "1", "-t", topic, "-m", "probe").Run()
		for _, l := range sub.snapshot() {
			if strings.HasPrefix(l, topic+" probe") {
				return true
			}
		}
		return false
	})
}

// newBridge is an mqtt sink over two local shards.
func newBridge(t *testing.T, m MQTTConfig) (*Forwarder, []*memShard) {
	t.Helper()
	cfg := testCfg()
	cfg.Kind, cfg.Name, cfg.TargetStream, cfg.Endpoint = KindMQTT, "remote", "", ""
	cfg.MQTT = m
	cfg.RequestTimeout = conf.Duration(3 * time.Second)
	cfg = cfg.WithDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	src := newMemSource("shardId-000000000000", "shardId-000000000001")
	shs := []*memShard{src.shard("shardId-000000000000"), src.shard("shardId-000000000001")}
	f, err := New(cfg, src, newMemCkpt(), testOpts(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	return f, shs
}

// writePropRecords is writeRecords with two MQTT 5 user properties on
// every record: unit=C and n=<its number>.
func writePropRecords(shs []*memShard, keys []string, from, to int) {
	for n := from; n < to; n++ {
		for i, k := range keys {
			shs[i%len(shs)].append(shards.Record{Key: k, Data: payload(k, n),
				Props: []shards.UserProperty{{Key: "unit", Value: "C"}, {Key: "n", Value: fmt.Sprint(n)}}})
		}
	}
}

// checkBridged checks the subscriber's "%t %p %P" lines under prefix:
// every record, first occurrences in order per key, each with its user
// properties (wantProps) or with none.
func checkBridged(t *testing.T, lines []string, prefix string, keys []string, perKey int, wantProps bool) {
	t.Helper()
	next := map[string]int{}
	seen := map[string]bool{}
	for _, l := range lines {
		if strings.HasPrefix(l, prefix+"probe ") || seen[l] {
			continue
		}
		seen[l] = true
		f := strings.SplitN(l, " ", 3)
		if len(f) < 2 {
			t.Fatalf("subscriber line %q", l)
		}
		k, _, _ := strings.Cut(f[1], "|")
		if f[0] != prefix+k {
			t.Fatalf("topic %q for %q, want %s%s", f[0], f[1], prefix, k)
		}
		if want := string(payload(k, next[k])); f[1] != want {
			t.Fatalf("key %s: first occurrence %q, want %q", k, f[1], want)
		}
		props := ""
		if len(f) == 3 {
			props = f[2]
		}
		has := strings.Contains(props, "unit:C") && strings.Contains(props, fmt.Sprintf("n:%d", next[k]))
		if has != wantProps || (!wantProps && strings.TrimSpace(props) != "") {
			t.Fatalf("%q: user properties %q, want them: %v", l, props, wantProps)
		}
		next[k]++
	}
	for _, k := range keys {
		if next[k] != perKey {
			t.Errorf("key %s: %d records at the subscriber, want %d", k, next[k], perKey)
		}
	}
}

// waitLines waits for n distinct lines at the subscriber.
func waitLines(t *testing.T, sub *subscriber, n int) []string {
	t.Helper()
	var got []string
	waitFor(t, 20*time.Second, "every record at the subscriber", func() bool {
		got = sub.snapshot()
		seen := map[string]bool{}
		for _, l := range got {
			seen[l] = true
		}
		return len(seen) >= n
	})
	return got
}

// With protocol auto the bridge speaks MQTT 5 to Mosquitto: an MQTT 5
// subscriber there sees the user properties the devices sent.
func TestMQTTSinkV5CarriesUserProperties(t *testing.T) {
	bridgeWithProps(t, "v5/", MQTTProtocolAuto, true)
}

// protocol: 3.1.1 still bridges (and, MQTT 3.1.1 having no properties,
// the records arrive without them).
func TestMQTTSinkProtocol311(t *testing.T) {
	bridgeWithProps(t, "v3/", MQTTProtocol311, false)
}

// bridgeWithProps bridges records with user properties to a real
// Mosquitto and checks what an MQTT 5 subscriber there gets.
func bridgeWithProps(t *testing.T, prefix, protocol string, wantProps bool) {
	needTool(t, "stdbuf")
	pki := harness.NewPKI(t)
	br := startMosquitto(t, pki)
	sub := startSubscriber(t, br, pki, prefix+"#", v5Format)
	waitSubscribed(t, br, pki, sub, prefix+"probe")
	kp := pki.Client("bridge", harness.Identity{CN: "weir-bridge"})
	f, shs := newBridge(t, MQTTConfig{Broker: fmt.Sprintf("ssl://127.0.0.1:%d", br.port), Topic: prefix + "{key}",
		Protocol: protocol, TLS: MQTTTLS{CAFile: pki.CAFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile}})
	keys := []string{"k0", "k1", "k2"}
	const perKey = 100
	writePropRecords(shs, keys, 0, perKey)
	stop := start(t, f)
	waitFor(t, 20*time.Second, "every record acknowledged", func() bool { return f.Lag().Sent == int64(perKey*len(keys)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := waitLines(t, sub, perKey*len(keys)+1)
	t.Logf("e.g. %q", got[len(got)-1])
	checkBridged(t, got, prefix, keys, perKey, wantProps)
}

// v3OnlyFront stands for a broker that speaks only MQTT 3.1.1, which no
// real broker at hand does (Mosquitto always offers 5): it answers an
// MQTT 5 CONNECT with the 3.1.1 CONNACK "unacceptable protocol version"
// and closes, as MQTT 3.1.1 section 3.1.2.2 prescribes, and relays any
// other connection to a real Mosquitto over TLS.
type v3OnlyFront struct {
	ln       net.Listener
	refused  atomic.Int32
	relayed  atomic.Int32
	upstream string
	tls      *tls.Config
	wg       sync.WaitGroup
}

func startV3OnlyFront(t *testing.T, upstream string, tc *tls.Config) *v3OnlyFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &v3OnlyFront{ln: ln, upstream: upstream, tls: tc}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() { defer f.wg.Done(); f.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

// serve reads the CONNECT (fixed header, remaining length, then "MQTT"
// and the protocol level) and refuses level 5.
func (f *v3OnlyFront) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	head := []byte{}
	b, err := r.ReadByte()
	if err != nil || b != 0x10 {
		return
	}
	head = append(head, b)
	n, mul := 0, 1
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		head = append(head, b)
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil || n < 7 {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if body[6] == 5 {
		f.refused.Add(1)
		_, _ = c.Write([]byte{0x20, 0x02, 0x00, 0x01})
		return
	}
	up, err := tls.Dial("tcp", f.upstream, f.tls)
	if err != nil {
		return
	}
	defer up.Close()
	f.relayed.Add(1)
	if _, err := up.Write(append(head, body...)); err != nil {
		return
	}
	go func() { _, _ = io.Copy(c, up); c.Close() }()
	_, _ = io.Copy(up, r)
}

// A remote that refuses MQTT 5 gets MQTT 3.1.1 (asked once: the refusal
// is remembered across reconnects); pinned to 5, the sink pauses saying so.
func TestMQTTSinkFallsBackWhenRemoteRefusesV5(t *testing.T) {
	needTool(t, "stdbuf")
	pki := harness.NewPKI(t)
	br := startMosquitto(t, pki)
	sub := startSubscriber(t, br, pki, "fb/#", v5Format)
	waitSubscribed(t, br, pki, sub, "fb/probe")
	kp := pki.Client("bridge", harness.Identity{CN: "weir-bridge"})
	front := startV3OnlyFront(t, fmt.Sprintf("127.0.0.1:%d", br.port), pki.ClientTLS(kp))
	broker := "tcp://" + front.ln.Addr().String()

	t.Run("pinned to 5", func(t *testing.T) {
		f, shs := newBridge(t, MQTTConfig{Broker: broker, Topic: "fb/{key}", Protocol: MQTTProtocol5})
		writePropRecords(shs, []string{"k0"}, 0, 5)
		stop := start(t, f)
		waitFor(t, 10*time.Second, "paused", func() bool { return f.Lag().State.Phase == Paused })
		if r := f.Lag().State.Reason; !strings.HasPrefix(r, "UnsupportedProtocolVersion:") || !strings.Contains(r, "3.1.1") {
			t.Errorf("reason %q", r)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if f.Lag().Sent != 0 || front.relayed.Load() != 0 {
			t.Errorf("sent %d, relayed %d connections: a pinned protocol must not fall back", f.Lag().Sent, front.relayed.Load())
		}
	})
	refusedBefore := front.refused.Load()
	if refusedBefore == 0 {
		t.Fatal("the front never refused MQTT 5")
	}

	f, shs := newBridge(t, MQTTConfig{Broker: broker, Topic: "fb/{key}"})
	keys := []string{"k0", "k1"}
	const perKey = 100
	writePropRecords(shs, keys, 0, perKey/2)
	stop := start(t, f)
	waitFor(t, 20*time.Second, "first half acknowledged", func() bool { return f.Lag().Sent == int64(perKey) })
	// A remote restart: the sink reconnects, straight to 3.1.1.
	br.stop(syscall.SIGTERM)
	writePropRecords(shs, keys, perKey/2, perKey)
	time.Sleep(300 * time.Millisecond)
	br.start()
	waitFor(t, 30*time.Second, "every record acknowledged", func() bool { return f.Lag().Sent == int64(perKey*len(keys)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkBridged(t, waitLines(t, sub, perKey*len(keys)+1), "fb/", keys, perKey, false)
	if n := front.refused.Load() - refusedBefore; n != 1 {
		t.Errorf("MQTT 5 asked %d times with protocol auto, want once", n)
	}
	if n := front.relayed.Load(); n < 2 {
		t.Errorf("%d MQTT 3.1.1 connections relayed, want at least 2 (one after the restart)", n)
	}
}

// An ACL on the remote that denies the bridge's topic gets PUBACK 0x87:
// the sink pauses saying "not authorized", loses nothing, and resumes once
// the ACL is fixed (Mosquitto rereads it on SIGHUP).
func TestMQTTSinkNotAuthorizedPausesUntilACLFixed(t *testing.T) {
	needTool(t, "stdbuf")
	pki := harness.NewPKI(t)
	acl := filepath.Join(t.TempDir(), "acl")
	const base = "user remote-sub\ntopic read #\nuser probe\ntopic write #\nuser weir-bridge\n"
	if err := os.WriteFile(acl, []byte(base+"topic write elsewhere/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	br := startMosquittoConf(t, pki, "acl_file "+acl)
	sub := startSubscriber(t, br, pki, "acl/#", v5Format)
	waitSubscribed(t, br, pki, sub, "acl/probe")
	kp := pki.Client("bridge", harness.Identity{CN: "weir-bridge"})
	f, shs := newBridge(t, MQTTConfig{Broker: fmt.Sprintf("ssl://127.0.0.1:%d", br.port), Topic: "acl/{key}",
		TLS: MQTTTLS{CAFile: pki.CAFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile}})
	keys := []string{"k0", "k1"}
	const perKey = 50
	writePropRecords(shs, keys, 0, perKey)
	stop := start(t, f)
	waitFor(t, 10*time.Second, "paused", func() bool { return f.Lag().State.Phase == Paused })
	lag := f.Lag()
	t.Logf("state %q, last error %q", lag.State, lag.LastError)
	if !strings.HasPrefix(lag.State.Reason, "NotAuthorized:") || !strings.Contains(lag.LastError, "not authorized") {
		t.Errorf("state %q, last error %q: want NotAuthorized / not authorized", lag.State, lag.LastError)
	}
	if lag.Sent != 0 || lag.Lost != 0 {
		t.Errorf("sent %d lost %d while denied, want 0 and 0", lag.Sent, lag.Lost)
	}

	if err := os.WriteFile(acl, []byte(base+"topic write acl/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := br.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every record acknowledged after the ACL fix", func() bool { return f.Lag().Sent == int64(perKey*len(keys)) })
	if p := f.Lag().State.Phase; p != Running {
		t.Errorf("phase %v after the fix, want running", p)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkBridged(t, waitLines(t, sub, perKey*len(keys)+1), "acl/", keys, perKey, true)
}

// A record larger than the remote's Maximum Packet Size (Mosquitto
// max_packet_size, sent in its MQTT 5 CONNACK) pauses the sink with a
// clear reason instead of resending it forever; nothing is dropped.
func TestMQTTSinkRecordOverRemoteMaxPacketPauses(t *testing.T) {
	pki := harness.NewPKI(t)
	br := startMosquittoConf(t, pki, "max_packet_size 2048")
	kp := pki.Client("bridge", harness.Identity{CN: "weir-bridge"})
	f, shs := newBridge(t, MQTTConfig{Broker: fmt.Sprintf("ssl://127.0.0.1:%d", br.port), Topic: "big/{key}",
		TLS: MQTTTLS{CAFile: pki.CAFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile}})
	shs[0].append(shards.Record{Key: "small", Data: []byte("fits")})
	shs[1].append(shards.Record{Key: "big", Data: make([]byte, 4096)})
	stop := start(t, f)
	waitFor(t, 10*time.Second, "paused", func() bool { return f.Lag().State.Phase == Paused })
	waitFor(t, 10*time.Second, "the small record acknowledged", func() bool { return f.Lag().Sent == 1 })
	lag := f.Lag()
	if !strings.HasPrefix(lag.State.Reason, "PacketTooLarge:") || !strings.Contains(lag.LastError, "at most 2048") {
		t.Errorf("state %q, last error %q: want PacketTooLarge ... at most 2048", lag.State, lag.LastError)
	}
	if lag.Lost != 0 {
		t.Errorf("lost %d, want 0", lag.Lost)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// decodeMsg reads back what encode wrote, user properties included.
func FuzzMQTTEncode(f *testing.F) {
	f.Add("t/{key}", "k", []byte("data"), "unit", "C")
	f.Add("{topic}", "", []byte{}, "", "")
	f.Fuzz(func(t *testing.T, tmpl, topic string, data []byte, pk, pv string) {
		if checkTopicTemplate(tmpl) != nil {
			return
		}
		s := &mqttSink{cfg: Config{Stream: "s", MQTT: MQTTConfig{Topic: tmpl}}}
		r := &shards.Record{Key: "k", Topic: topic, Data: data, Props: []shards.UserProperty{{Key: pk, Value: pv}}}
		b, err := s.encode("shardId-000000000000", r)
		if err != nil {
			return
		}
		m := decodeMsg(b)
		if string(m.data) != string(data) || len(m.props) != 1 || m.props[0].Key != pk || m.props[0].Value != pv || m.topic == "" {
			t.Fatalf("%q %q %q %q: got %+v", tmpl, data, pk, pv, m)
		}
	})
}

// MQTT 5 refusals: what the remote lacks now is retried with backoff,
// what an operator must fix pauses the sink with the reason.
func TestMQTTReasonClassify(t *testing.T) {
	s := &mqttSink{}
	for _, c := range []struct {
		code byte
		kind failKind
		name string
	}{
		{0x97, transient, "QuotaExceeded"}, {0x89, transient, "ServerBusy"}, {0x80, transient, "Reason0x80"},
		{0x87, permanent, "NotAuthorized"}, {0x90, permanent, "TopicNameInvalid"}, {0x99, permanent, "PayloadFormatInvalid"},
		{0x95, permanent, "PacketTooLarge"},
	} {
		err := fmt.Errorf("send: %w", &MQTTReasonError{Packet: "PUBACK", Code: c.code, Reason: "why"})
		fl := s.classify(err)
		if fl.kind != c.kind || fl.code != c.name || !strings.Contains(fl.msg, "why") || (c.kind == permanent && fl.fix == "") {
			t.Errorf("0x%02x: %+v, want kind %v code %s with a fix when permanent", c.code, fl, c.kind, c.name)
		}
	}
	if fl := s.classify(&mqttV5RefusedError{definite: true}); fl.kind != permanent || fl.code != "UnsupportedProtocolVersion" {
		t.Errorf("v5 refused, pinned: %+v", fl)
	}
}

func TestMQTTConfigProtocol(t *testing.T) {
	m := MQTTConfig{Broker: "ssl://broker.example:8883"}.WithDefaults()
	if m.Protocol != MQTTProtocolAuto || len(m.Validate()) != 0 {
		t.Fatalf("default protocol %q, errors %v", m.Protocol, m.Validate())
	}
	for _, p := range []string{MQTTProtocol5, MQTTProtocol311} {
		m.Protocol = p
		if errs := m.Validate(); len(errs) != 0 {
			t.Errorf("%s: %v", p, errs)
		}
	}
	m.Protocol = "4"
	errs := m.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "protocol") || !strings.Contains(errs[0].Error(), "3.1.1") {
		t.Errorf("protocol 4: %v, want one error on protocol naming the choices", errs)
	}
}
