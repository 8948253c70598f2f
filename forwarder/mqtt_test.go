package forwarder

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weir-gateway/weir/integration/harness"
)

// mosquittoBroker is a real Mosquitto (Debian's) on a free port, TLS only,
// requiring client certificates, with persistence so a restart keeps
// subscribers' sessions and queued messages.
type mosquittoBroker struct {
	t    *testing.T
	conf string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (Debian: mosquitto and mosquitto-clients; or run scripts/install-deps.sh): %v", name, err)
	}
	return p
}

func startMosquitto(t *testing.T, pki *harness.PKI) *mosquittoBroker {
	t.Helper()
	return startMosquittoConf(t, pki, "")
}

// startMosquittoConf starts the broker with extra lines in its
// configuration (acl_file, say).
func startMosquittoConf(t *testing.T, pki *harness.PKI, extra string) *mosquittoBroker {
	t.Helper()
	needTool(t, "mosquitto")
	dir := t.TempDir()
	port := harness.FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// user: mosquitto started as root otherwise drops to user mosquitto,
	// which cannot read the test's private temp directory.
	body := fmt.Sprintf(`user %s
per_listener_settings false
persistence true
persistence_location %s/
autosave_interval 1
max_queued_messages 0
log_dest stderr
log_type error
log_type warning
allow_anonymous false
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
%s
`, me.Username, dir, port, pki.CAFile, pki.ServerCert, pki.ServerKey, extra)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &mosquittoBroker{t: t, conf: conf, port: port}
	b.start()
	t.Cleanup(func() { b.stop(syscall.SIGKILL) })
	return b
}

func (b *mosquittoBroker) start() {
	b.t.Helper()
	b.cmd = exec.Command("mosquitto", "-c", b.conf)
	b.cmd.Stderr = &testLogWriter{t: b.t, prefix: "mosquitto: "}
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.done:
			b.t.Fatalf("mosquitto exited at start")
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto does not listen on %d: %v", b.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the broker with sig and waits for it; SIGTERM lets it save
// its persistence file.
func (b *mosquittoBroker) stop(sig syscall.Signal) {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

type testLogWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// subscriber is mosquitto_sub on the remote broker with a persistent
// session (-c), so it gets what was published while it reconnected.
type subscriber struct {
	mu    sync.Mutex
	lines []string
}

func (s *subscriber) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// startSubscriber runs mosquitto_sub with -v, or with format instead
// (the MQTT 5 -F format, then the subscriber speaks MQTT 5).
func startSubscriber(t *testing.T, b *mosquittoBroker, pki *harness.PKI, topic string, format ...string) *subscriber {
	t.Helper()
	flags := []string{"-v"}
	if len(format) > 0 {
		flags = []string{"-V", "mqttv5", "-F", format[0]}
	}
	needTool(t, "mosquitto_sub")
	kp := pki.Client("sub", harness.Identity{CN: "remote-sub"})
	// --insecure skips only the host name check (the server certificate is
	// still verified against the CA); libmosquitto does not match IP SANs.
	cmd := exec.Command("stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", fmt.Sprint(b.port),
		"--cafile", pki.CAFile, "--cert", kp.CertFile, "--key", kp.KeyFile, "--insecure",
		"-i", "remote-sub", "-c", "-q", "1", "-t", topic)
	cmd.Args = append(cmd.Args, flags...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testLogWriter{t: t, prefix: "mosquitto_sub: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &subscriber{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	return s
}

// The bridge publishes every record to a real Mosquitto over TLS with a
// client certificate; a mosquitto_sub there sees every record, the first
// occurrences of each key in order, across a restart of the remote
// broker in the middle of the stream.
func TestMQTTSinkBridgeAcrossRemoteRestart(t *testing.T) {
	needTool(t, "stdbuf")
	pki := harness.NewPKI(t)
	br := startMosquitto(t, pki)
	sub := startSubscriber(t, br, pki, "bridge/#")
	waitSubscribed(t, br, pki, sub, "bridge/probe")
	kp := pki.Client("bridge", harness.Identity{CN: "weir-bridge"})
	f, shs := newBridge(t, MQTTConfig{Broker: fmt.Sprintf("ssl://127.0.0.1:%d", br.port), Topic: "bridge/{key}/{topic}",
		TLS: MQTTTLS{CAFile: pki.CAFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile}})
	keys := []string{"k0", "k1", "k2", "k3"}
	const perKey = 400
	writeRecords(shs, keys, 0, 100)
	stop := start(t, f)
	waitFor(t, 20*time.Second, "some records bridged", func() bool { return f.Lag().Sent >= 200 })
	writeRecords(shs, keys, 100, 200)
	br.stop(syscall.SIGTERM)
	writeRecords(shs, keys, 200, 300)
	time.Sleep(300 * time.Millisecond) // the sink notices and backs off
	br.start()
	writeRecords(shs, keys, 300, perKey)
	waitFor(t, 60*time.Second, "every record acknowledged by the remote", func() bool { return f.Lag().Sent == int64(perKey*len(keys)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	got := waitLines(t, sub, perKey*len(keys)+1) // and the probe
	t.Logf("subscriber: %d lines", len(got))
	next := map[string]int{}
	seen := map[string]bool{}
	dups := 0
	for _, l := range got {
		if l == "bridge/probe probe" {
			continue
		}
		if seen[l] {
			dups++
			continue
		}
		seen[l] = true
		topic, data, _ := strings.Cut(l, " ")
		k, _, _ := strings.Cut(data, "|")
		if topic != "bridge/"+k+"/" {
			t.Fatalf("topic %q for %q, want bridge/%s/ (template bridge/{key}/{topic}, empty record topic)", topic, data, k)
		}
		if want := string(payload(k, next[k])); data != want {
			t.Fatalf("key %s: first occurrence %q, want %q", k, data, want)
		}
		next[k]++
	}
	for _, k := range keys {
		if next[k] != perKey {
			t.Errorf("key %s: %d records at the subscriber, want %d", k, next[k], perKey)
		}
	}
	t.Logf("%d lines, %d duplicates, resent %d", len(got), dups, f.Lag().Resent)
	if f.Lag().Resent == 0 {
		t.Error("nothing was resent: the remote restart did not hit the bridge")
	}
}
