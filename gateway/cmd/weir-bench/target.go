package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Broker kinds under test.
const (
	kindWeir = "weir"
	kindBare = "bare"
	// kindWeirTLS is weir with a TLS listener (mTLS with benchEnv.mtls)
	// beside its plain one; the fleet uses the TLS one.
	kindWeirTLS = "weir-tls"
	// kindMosquittoTLS is Mosquitto 2 with the same TLS listener (same
	// certificates, client certificates required with benchEnv.mtls)
	// beside a plain one; the fleet uses the TLS one.
	kindMosquittoTLS = "mosquitto-tls"
)

// benchEnv is what starting a broker needs.
type benchEnv struct {
	weirBin string // the weir binary
	// mosquittoBin is the mosquitto binary of kindMosquittoTLS.
	mosquittoBin string
	selfBin      string // this binary, re-run as the bare broker
	tmp          string
	shards       int
	fsync        string
	// commitDelay is durability.commit_delay; empty leaves weir's default.
	commitDelay string
	noStore     bool // route a filter the fleet never publishes to
	idlePublish bool // idle devices publish once before they are measured
	// brokerCPUs, if set, pins the broker under test to these CPUs
	// (taskset -c); run weir-bench itself under taskset for the fleet.
	brokerCPUs string
	size       int // payload bytes
	// pki and mtls configure kindWeirTLS and its devices.
	pki  *benchPKI
	mtls bool
	// classicHello makes devices offer only X25519 and P-256 key shares,
	// as OpenSSL 3.0 (mosquitto_pub on Debian 12) and mbedTLS do, instead
	// of Go's post-quantum hybrid: a ClientHello of ~300 bytes, not ~1.5 KB.
	// crypto/tls keeps buffers the size of the largest handshake record
	// for the life of the connection, so this changes idle memory.
	classicHello bool
}

// deviceTLS is a device's TLS config for the weir-tls target.
func (env *benchEnv) deviceTLS(id string) (*tls.Config, error) {
	c, err := env.pki.clientTLS(id, env.mtls)
	if err == nil && env.classicHello {
		c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	return c, err
}

// target is one broker process under test, on a fresh port (and, for
// weir, a fresh data directory) per run.
type target struct {
	kind    string
	addr    string
	tlsAddr string // kindWeirTLS: where the fleet connects
	dir     string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

func startTarget(env *benchEnv, kind string) (*target, error) {
	dir, err := os.MkdirTemp(env.tmp, kind+"-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	t := &target{kind: kind, addr: addr, dir: dir, done: make(chan struct{})}
	switch kind {
	case kindWeir, kindWeirTLS:
		listeners := ""
		if kind == kindWeirTLS {
			if env.pki == nil {
				return nil, fmt.Errorf("weir-tls target without a PKI")
			}
			if t.tlsAddr, err = freeAddr(); err != nil {
				return nil, err
			}
			listeners = tlsListenerYAML(t.tlsAddr, env.pki, env.mtls)
		}
		cfg := filepath.Join(dir, "weir.yaml")
		if err := os.WriteFile(cfg, []byte(weirConfig(filepath.Join(dir, "data"), addr, listeners, env)), 0o644); err != nil {
			return nil, err
		}
		t.cmd = exec.Command(env.weirBin, "serve", "--config", cfg)
	case kindBare:
		t.cmd = exec.Command(env.selfBin, bareBrokerCmd, "--listen", addr)
	case kindMosquittoTLS:
		if t.tlsAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(cfg, []byte(mosquittoConfig(addr, t.tlsAddr, env)), 0o644); err != nil {
			return nil, err
		}
		t.cmd = exec.Command(env.mosquittoBin, "-c", cfg)
	default:
		return nil, fmt.Errorf("unknown broker kind %q", kind)
	}
	if env.brokerCPUs != "" {
		// taskset execs the broker: the pid stays the broker's.
		t.cmd = exec.Command("taskset", append([]string{"-c", env.brokerCPUs, t.cmd.Path}, t.cmd.Args[1:]...)...)
	}
	logf, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		return nil, err
	}
	t.cmd.Stdout, t.cmd.Stderr = logf, logf
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	go func() {
		t.err = t.cmd.Wait()
		logf.Close()
		close(t.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-t.done:
			return nil, fmt.Errorf("%s exited while starting (%v):\n%s", kind, t.err, t.log())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return t, nil
		}
		if time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("%s did not accept on %s within 20s:\n%s", kind, addr, t.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// weirConfig is the weir target's config; listeners is YAML for more
// mqtt.listeners (the TLS one), "" for none.
func weirConfig(dataDir, addr, listeners string, env *benchEnv) string {
	return fmt.Sprintf(`data_dir: %q
log: {level: warn, format: json}
mqtt:
  listen: %s%s
durability:
  fsync: %s%s
api:
  listen: ""
streams:
  - name: telemetry
    shards: %d
    rate: {records_per_sec: 0, bytes_per_sec: 0}
routes:
  - filter: %s
    stream: telemetry
    partition_key: "{topic.1}"
`, dataDir, addr, listeners, env.fsync, commitDelayLine(env.commitDelay), env.shards, routeFilter(env.noStore))
}

// mosquittoConfig is the Mosquitto 2 target's config: a plain listener
// on addr (to see it is up) and the TLS one on tlsAddr with weir's
// settings in Mosquitto's words (require_certificate and
// use_identity_as_username for identity_from: cn).
func mosquittoConfig(addr, tlsAddr string, env *benchEnv) string {
	host, port, _ := net.SplitHostPort(addr)
	tlsHost, tlsPort, _ := net.SplitHostPort(tlsAddr)
	// Run as whoever runs the bench: as root, Mosquitto would otherwise
	// switch to the user "mosquitto", which may not read the temp files.
	who := "root"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	s := fmt.Sprintf(`user %s
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
listener %s %s
listener %s %s
cafile %s
certfile %s
keyfile %s
`, who, port, host, tlsPort, tlsHost, env.pki.caFile, env.pki.certFile, env.pki.keyFile)
	if env.mtls {
		s += "require_certificate true\nuse_identity_as_username true\n"
	}
	return s
}

func routeFilter(noStore bool) string {
	if noStore {
		return "nothing/routed/here"
	}
	return "devices/+/telemetry"
}

func commitDelayLine(d string) string {
	if d == "" {
		return ""
	}
	return "\n  commit_delay: " + d
}

// url is where the fleet connects: the TLS listener of a weir-tls target.
func (t *target) url() string {
	if t.tlsAddr != "" {
		return "ssl://" + t.tlsAddr
	}
	return "tcp://" + t.addr
}

// deviceTLS is the devices' TLS config for this target, nil for plain.
func (t *target) deviceTLS(env *benchEnv) func(id string) (*tls.Config, error) {
	if t.tlsAddr == "" {
		return nil
	}
	return env.deviceTLS
}

// fleetAddr is url's host:port.
func (t *target) fleetAddr() string {
	if t.tlsAddr != "" {
		return t.tlsAddr
	}
	return t.addr
}
func (t *target) pid() int { return t.cmd.Process.Pid }

// stop ends the broker with SIGTERM (SIGKILL after 10 s) and removes its
// data: every run starts from an empty directory.
func (t *target) stop() error {
	defer os.RemoveAll(t.dir)
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		t.cmd.Process.Kill()
		<-t.done
		return fmt.Errorf("%s ignored SIGTERM for 10s", t.kind)
	}
	var ee *exec.ExitError
	if t.err != nil && !errors.As(t.err, &ee) {
		return t.err
	}
	if t.err != nil {
		return fmt.Errorf("%s exited with %v:\n%s", t.kind, t.err, t.log())
	}
	return nil
}

func (t *target) log() string {
	b, _ := os.ReadFile(filepath.Join(t.dir, "broker.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(bytes.TrimSpace(b))
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// buildWeir compiles gateway/cmd/weir from the module this command is run
// in, so `go run ./gateway/cmd/weir-bench` measures the working tree.
func buildWeir(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the weir module (go env GOMOD: %q, %v): pass --weir PATH", mod, err)
	}
	bin := filepath.Join(dir, "weir")
	cmd := exec.Command("go", "build", "-o", bin, "./gateway/cmd/weir")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build weir: %v\n%s", err, msg)
	}
	return bin, nil
}
