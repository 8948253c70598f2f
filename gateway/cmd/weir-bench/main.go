// Command weir-bench is issue 2's end-to-end ingest benchmark: in one run
// on one machine it drives the same device fleet against weir (the real
// binary, fsync: always, rate limits off, 4 shards) and against a bare
// mochi broker with no hooks, alternating weir, bare, weir, bare... to
// spread machine noise over both, and reports medians.
//
// Modes:
//   - throughput: 100 devices, QoS 1, 200-byte payloads, each publishing as
//     fast as its PUBACKs come back; acked msgs/s and weir/bare (target ≥ 0.85).
//   - latency: paced, 100 devices × 100 msg/s (10,000 msg/s offered);
//     publish→PUBACK p50/p99/p999 (target: weir p99 ≤ 10 ms).
//   - idle: 5,000 devices connect with a minimal raw CONNECT and stay idle;
//     the broker's RSS growth per device (target: weir ≤ 16 KiB).
//
// TLS modes (issue 11), weir against itself: the same gateway with a TLS
// listener (mqtt.listeners[].tls) beside the plain one, and a throw-away
// CA made for the run; --mtls gives every device its own client
// certificate (identity_from: cn).
//   - tls: the throughput fleet over TLS vs plain, alternating; acked
//     msgs/s and tls/plain (target ≥ 0.8).
//   - handshakes: --handshake-workers devices connect (TLS handshake,
//     CONNECT, CONNACK) and close in a loop: connects/s over TLS (mTLS
//     with --mtls) beside plain TCP.
//   - tls-idle: idle devices as in idle, over TLS: RSS per device
//     (target ≤ 24 KiB), plain weir beside it, and Mosquitto 2 (--mosquitto)
//     with the same certificates, over the same TLS (mTLS) devices.
//
// The idle modes read RSS --idle-wait (3 s) after the last CONNACK. A Go
// broker's RSS keeps growing for a minute or so after that, until the
// garbage made while idle fills the collector's headroom: a longer wait
// measures that settled figure.
//
// Both brokers run as separate processes (the bare one is this binary
// re-run as `weir-bench bare-broker`); the fleet runs here, as paho
// clients. Run it from the repository (it builds gateway/cmd/weir) or pass
// --weir. scripts/bench.sh runs it and keeps the results.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// settings are the flags, echoed into the report.
type settings struct {
	Mode        string        `json:"mode"`
	Duration    time.Duration `json:"-"`
	DurationS   float64       `json:"duration_s"`
	Warmup      time.Duration `json:"-"`
	Rounds      int           `json:"rounds"`
	Devices     int           `json:"devices"`
	Size        int           `json:"payload_bytes"`
	Rate        float64       `json:"latency_rate_per_device"`
	IdleDevices int           `json:"idle_devices"`
	IdleWait    time.Duration `json:"-"`
	IdleWaitS   float64       `json:"idle_wait_s"`
	IdlePublish bool          `json:"idle_publish,omitempty"`
	BrokerCPUs  string        `json:"broker_cpus,omitempty"`
	Shards      int           `json:"shards"`
	Fsync       string        `json:"fsync"`
	CommitDelay string        `json:"commit_delay,omitempty"`
	NoStore     bool          `json:"no_store,omitempty"`
	MTLS        bool          `json:"mtls,omitempty"`
	DeviceHello string        `json:"device_hello,omitempty"`
	HSWorkers   int           `json:"handshake_workers,omitempty"`
	JSON        bool          `json:"-"`
	JSONFile    string        `json:"-"`
	Weir        string        `json:"-"`
	// Mosquitto is the mosquitto binary tls-idle measures beside weir;
	// "" leaves it out.
	Mosquitto string `json:"-"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == bareBrokerCmd {
		os.Exit(runBareBroker(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var s settings
	fs := flag.NewFlagSet("weir-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.Mode, "mode", "all", "throughput | latency | idle | all | tls | handshakes | tls-idle")
	fs.DurationVar(&s.Duration, "duration", 10*time.Second, "measured time of each throughput or latency run")
	fs.DurationVar(&s.Warmup, "warmup", time.Second, "unmeasured time before each run's measurement")
	fs.IntVar(&s.Rounds, "rounds", 3, "runs per broker, alternating weir and bare; medians are reported")
	fs.IntVar(&s.Devices, "devices", 100, "devices in the throughput and latency fleets")
	fs.IntVar(&s.Size, "size", 200, "payload bytes")
	fs.Float64Var(&s.Rate, "rate", 100, "latency mode: messages per second per device")
	fs.IntVar(&s.IdleDevices, "idle-devices", 5000, "idle mode: connected idle devices")
	fs.DurationVar(&s.IdleWait, "idle-wait", 3*time.Second, "idle modes: how long after the last CONNACK RSS is read (longer: after idle-time garbage has filled the GC's headroom)")
	fs.StringVar(&s.BrokerCPUs, "broker-cpus", "", "pin the broker under test to these CPUs (taskset -c LIST); run weir-bench under taskset for the fleet's")
	fs.BoolVar(&s.IdlePublish, "idle-publish", false, "idle mode: each device publishes one QoS 1 message after connecting (recently active devices)")
	fs.IntVar(&s.Shards, "shards", 4, "weir: shards of the stream")
	fs.StringVar(&s.Fsync, "fsync", "always", "weir: durability.fsync (always | interval)")
	fs.StringVar(&s.CommitDelay, "commit-delay", "", "weir: durability.commit_delay (default: weir's own default)")
	fs.BoolVar(&s.NoStore, "no-store", false, "weir: route no topic, so nothing is stored (the cost of the broker and hooks alone)")
	fs.BoolVar(&s.MTLS, "mtls", false, "TLS modes: every device presents its own client certificate (mTLS, identity_from: cn)")
	fs.StringVar(&s.DeviceHello, "device-hello", "go", "TLS modes: the devices' ClientHello: go (Go's default, with a post-quantum X25519MLKEM768 key share, ~1.5 KB) | classic (X25519 and P-256 only, as OpenSSL 3.0 and mbedTLS send, ~300 B)")
	fs.IntVar(&s.HSWorkers, "handshake-workers", 8, "handshakes mode: devices connecting at once")
	fs.BoolVar(&s.JSON, "json", false, "print the report as JSON on stdout (progress stays on stderr)")
	fs.StringVar(&s.JSONFile, "json-file", "", "also write the JSON report to this file")
	fs.StringVar(&s.Weir, "weir", "", "weir binary (default: build ./gateway/cmd/weir from the current module)")
	fs.StringVar(&s.Mosquitto, "mosquitto", "mosquitto", "tls-idle mode: Mosquitto 2 binary measured beside weir with the same certificates and devices (\"\" = weir only)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	s.DurationS = s.Duration.Seconds()
	s.IdleWaitS = s.IdleWait.Seconds()
	modes := map[string][]string{
		"throughput": {"throughput"}, "latency": {"latency"}, "idle": {"idle"},
		"all": {"throughput", "latency", "idle"},
		"tls": {"tls"}, "handshakes": {"handshakes"}, "tls-idle": {"tls-idle"},
	}[s.Mode]
	if modes == nil || s.Rounds < 1 || s.Devices < 1 || s.Duration <= 0 || s.Rate <= 0 || s.IdleDevices < 1 || s.IdleWait <= 0 || s.HSWorkers < 1 ||
		(s.DeviceHello != "go" && s.DeviceHello != "classic") {
		fmt.Fprintln(stderr, "weir-bench: bad flags: --mode must be throughput|latency|idle|all|tls|handshakes|tls-idle; --device-hello go|classic; rounds, devices, duration, rate, idle-devices must be positive")
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	rep, err := bench(ctx, s, stderr, modes)
	if err != nil {
		fmt.Fprintln(stderr, "weir-bench:", err)
		return 1
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, "weir-bench:", err)
		return 1
	}
	js = append(js, '\n')
	if s.JSONFile != "" {
		if err := os.WriteFile(s.JSONFile, js, 0o644); err != nil {
			fmt.Fprintln(stderr, "weir-bench:", err)
			return 1
		}
	}
	if s.JSON {
		stdout.Write(js)
	} else {
		printText(stdout, rep)
	}
	return 0
}

// Report is the whole result; its JSON form goes to bench-results/.
type Report struct {
	Machine    machine           `json:"machine"`
	Settings   settings          `json:"settings"`
	Throughput *throughputReport `json:"throughput,omitempty"`
	Latency    *latencyReport    `json:"latency,omitempty"`
	Idle       *idleReport       `json:"idle,omitempty"`
	TLS        *tlsReport        `json:"tls,omitempty"`
	Handshakes *handshakeReport  `json:"handshakes,omitempty"`
	TLSIdle    *tlsIdleReport    `json:"tls_idle,omitempty"`
}

// tlsReport compares the same fleet over weir's TLS and plain listeners.
type tlsReport struct {
	Plain  series  `json:"plain"`
	TLS    series  `json:"tls"`
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target_ratio"`
	MTLS   bool    `json:"mtls"`
}

type handshakeReport struct {
	Plain       []handshakeResult `json:"plain"`
	TLS         []handshakeResult `json:"tls"`
	PlainMedian float64           `json:"median_plain_connects_per_sec"`
	TLSMedian   float64           `json:"median_tls_connects_per_sec"`
	MTLS        bool              `json:"mtls"`
}

type tlsIdleReport struct {
	Devices int        `json:"devices"`
	Plain   idleSeries `json:"plain"`
	TLS     idleSeries `json:"tls"`
	// Mosquitto is Mosquitto 2 with the same TLS listener settings.
	Mosquitto *idleSeries `json:"mosquitto_tls,omitempty"`
	TargetKiB float64     `json:"target_tls_kib_per_device"`
	MTLS      bool        `json:"mtls"`
}

type machine struct {
	CPU   string `json:"cpu"`
	Cores int    `json:"cores"`
	Go    string `json:"go"`
	OS    string `json:"os"`
}

type series struct {
	Runs   []loadResult `json:"runs"`
	Median float64      `json:"median_msgs_per_sec"`
	P50    float64      `json:"median_p50_ms"`
	P99    float64      `json:"median_p99_ms"`
	P999   float64      `json:"median_p999_ms"`
	// Medians of the runs' CPU per acked message, µs.
	BrokerCPU float64 `json:"median_broker_cpu_us_per_msg,omitempty"`
	LoadCPU   float64 `json:"median_load_cpu_us_per_msg,omitempty"`
}

type throughputReport struct {
	Weir   series  `json:"weir"`
	Bare   series  `json:"bare"`
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target_ratio"`
}

type latencyReport struct {
	Offered   float64 `json:"offered_msgs_per_sec"`
	Weir      series  `json:"weir"`
	Bare      series  `json:"bare"`
	TargetP99 float64 `json:"target_weir_p99_ms"`
}

type idleRun struct {
	BeforeKiB int64   `json:"rss_before_kib"`
	AfterKiB  int64   `json:"rss_after_kib"`
	PerDevice float64 `json:"kib_per_device"`
}

type idleSeries struct {
	Runs   []idleRun `json:"runs"`
	Median float64   `json:"median_kib_per_device"`
}

type idleReport struct {
	Devices   int        `json:"devices"`
	Weir      idleSeries `json:"weir"`
	Bare      idleSeries `json:"bare"`
	TargetKiB float64    `json:"target_weir_kib_per_device"`
}

func bench(ctx context.Context, s settings, progress io.Writer, modes []string) (*Report, error) {
	tmp, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	env := &benchEnv{weirBin: s.Weir, mosquittoBin: s.Mosquitto, tmp: tmp, shards: s.Shards, fsync: s.Fsync, commitDelay: s.CommitDelay, noStore: s.NoStore, mtls: s.MTLS,
		classicHello: s.DeviceHello == "classic", idlePublish: s.IdlePublish, size: s.Size, brokerCPUs: s.BrokerCPUs}
	if env.pki, err = newBenchPKI(tmp); err != nil {
		return nil, fmt.Errorf("make a CA: %w", err)
	}
	if env.selfBin, err = os.Executable(); err != nil {
		return nil, err
	}
	if slices.Contains(modes, "tls-idle") && env.mosquittoBin != "" {
		if env.mosquittoBin, err = exec.LookPath(env.mosquittoBin); err != nil {
			return nil, fmt.Errorf("tls-idle measures Mosquitto beside weir (--mosquitto \"\" leaves it out): %w", err)
		}
	} else {
		env.mosquittoBin = ""
	}
	if env.weirBin == "" {
		fmt.Fprintln(progress, "building gateway/cmd/weir ...")
		if env.weirBin, err = buildWeir(tmp); err != nil {
			return nil, err
		}
	}
	rep := &Report{Settings: s, Machine: machineInfo()}
	logf := func(f string, a ...any) { fmt.Fprintf(progress, f+"\n", a...) }
	for _, m := range modes {
		switch m {
		case "throughput":
			spec := loadSpec{Devices: s.Devices, Size: s.Size, Warmup: s.Warmup, Duration: s.Duration}
			w, b, err := alternate(ctx, env, s.Rounds, spec, "throughput", kindWeir, kindBare, logf)
			if err != nil {
				return nil, err
			}
			rep.Throughput = &throughputReport{Weir: w, Bare: b, Target: 0.85}
			if b.Median > 0 {
				rep.Throughput.Ratio = w.Median / b.Median
			}
		case "latency":
			spec := loadSpec{Devices: s.Devices, Size: s.Size, Rate: s.Rate, Warmup: s.Warmup, Duration: s.Duration}
			w, b, err := alternate(ctx, env, s.Rounds, spec, "latency", kindWeir, kindBare, logf)
			if err != nil {
				return nil, err
			}
			rep.Latency = &latencyReport{Offered: float64(s.Devices) * s.Rate, Weir: w, Bare: b, TargetP99: 10}
		case "idle":
			ir := &idleReport{Devices: s.IdleDevices, TargetKiB: 16}
			for round := 1; round <= s.Rounds; round++ {
				for _, kind := range order(round, kindWeir, kindBare) {
					r, err := idleOnce(ctx, env, kind, s.IdleDevices, s.IdleWait)
					if err != nil {
						return nil, fmt.Errorf("idle %s: %w", kind, err)
					}
					logf("idle round %d/%d: %-4s %6.1f KiB/device (RSS %d → %d KiB)", round, s.Rounds, kind, r.PerDevice, r.BeforeKiB, r.AfterKiB)
					ser := &ir.Weir
					if kind == kindBare {
						ser = &ir.Bare
					}
					ser.Runs = append(ser.Runs, r)
				}
			}
			for _, ser := range []*idleSeries{&ir.Weir, &ir.Bare} {
				var xs []float64
				for _, r := range ser.Runs {
					xs = append(xs, r.PerDevice)
				}
				ser.Median = median(xs)
			}
			rep.Idle = ir
		case "tls":
			spec := loadSpec{Devices: s.Devices, Size: s.Size, Warmup: s.Warmup, Duration: s.Duration}
			tl, pl, err := alternate(ctx, env, s.Rounds, spec, "tls", kindWeirTLS, kindWeir, logf)
			if err != nil {
				return nil, err
			}
			rep.TLS = &tlsReport{Plain: pl, TLS: tl, Target: 0.8, MTLS: s.MTLS}
			if pl.Median > 0 {
				rep.TLS.Ratio = tl.Median / pl.Median
			}
		case "handshakes":
			hr := &handshakeReport{MTLS: s.MTLS}
			for round := 1; round <= s.Rounds; round++ {
				for _, kind := range order(round, kindWeirTLS, kindWeir) {
					r, err := handshakesOnce(ctx, env, kind, s.HSWorkers, s.Duration)
					if err != nil {
						return nil, fmt.Errorf("handshakes %s: %w", kind, err)
					}
					logf("handshakes round %d/%d: %-8s %7.0f connects/s  cpu µs/connect broker %.0f load %.0f", round, s.Rounds, kind, r.PerSec, r.BrokerCPU, r.LoadCPU)
					if kind == kindWeirTLS {
						hr.TLS = append(hr.TLS, r)
					} else {
						hr.Plain = append(hr.Plain, r)
					}
				}
			}
			rate := func(rs []handshakeResult) (xs []float64) {
				for _, r := range rs {
					xs = append(xs, r.PerSec)
				}
				return xs
			}
			hr.PlainMedian, hr.TLSMedian = median(rate(hr.Plain)), median(rate(hr.TLS))
			rep.Handshakes = hr
		case "tls-idle":
			ir := &tlsIdleReport{Devices: s.IdleDevices, TargetKiB: 24, MTLS: s.MTLS}
			kinds := []string{kindWeirTLS, kindWeir}
			if env.mosquittoBin != "" {
				ir.Mosquitto = &idleSeries{}
				kinds = append(kinds, kindMosquittoTLS)
			}
			for round := 1; round <= s.Rounds; round++ {
				for _, kind := range rotate(round, kinds) {
					r, err := idleOnce(ctx, env, kind, s.IdleDevices, s.IdleWait)
					if err != nil {
						return nil, fmt.Errorf("tls-idle %s: %w", kind, err)
					}
					logf("tls-idle round %d/%d: %-13s %6.1f KiB/device (RSS %d → %d KiB)", round, s.Rounds, kind, r.PerDevice, r.BeforeKiB, r.AfterKiB)
					ser := map[string]*idleSeries{kindWeirTLS: &ir.TLS, kindWeir: &ir.Plain, kindMosquittoTLS: ir.Mosquitto}[kind]
					ser.Runs = append(ser.Runs, r)
				}
			}
			for _, ser := range []*idleSeries{&ir.Plain, &ir.TLS, ir.Mosquitto} {
				if ser == nil {
					continue
				}
				var xs []float64
				for _, r := range ser.Runs {
					xs = append(xs, r.PerDevice)
				}
				ser.Median = median(xs)
			}
			rep.TLSIdle = ir
		}
	}
	return rep, nil
}

// order alternates which broker goes first, so neither always runs on a
// machine warmed (or heated) by the other.
func order(round int, a, b string) []string {
	if round%2 == 1 {
		return []string{a, b}
	}
	return []string{b, a}
}

// rotate starts round r's runs at a different kind each round.
func rotate(round int, kinds []string) []string {
	i := (round - 1) % len(kinds)
	return append(slices.Clone(kinds[i:]), kinds[:i]...)
}

// alternate runs spec against kinds a and b in turn and returns a's
// series, then b's.
func alternate(ctx context.Context, env *benchEnv, rounds int, spec loadSpec, name, a, b string, logf func(string, ...any)) (sa, sb series, err error) {
	for round := 1; round <= rounds; round++ {
		for _, kind := range order(round, a, b) {
			r, err := loadOnce(ctx, env, kind, spec)
			if err != nil {
				return sa, sb, fmt.Errorf("%s %s: %w", name, kind, err)
			}
			logf("%s round %d/%d: %-4s %8.0f msgs/s  p50 %.2f ms  p99 %.2f ms  p999 %.2f ms  cpu µs/msg broker %.1f load %.1f",
				name, round, rounds, kind, r.MsgsPerSec, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.BrokerCPU, r.LoadCPU)
			if kind == a {
				sa.Runs = append(sa.Runs, r)
			} else {
				sb.Runs = append(sb.Runs, r)
			}
		}
	}
	return summarize(sa), summarize(sb), nil
}

func summarize(s series) series {
	var rate, p50, p99, p999, bcpu, lcpu []float64
	for _, r := range s.Runs {
		rate = append(rate, r.MsgsPerSec)
		bcpu = append(bcpu, r.BrokerCPU)
		lcpu = append(lcpu, r.LoadCPU)
		p50 = append(p50, r.Latency.P50)
		p99 = append(p99, r.Latency.P99)
		p999 = append(p999, r.Latency.P999)
	}
	s.Median, s.P50, s.P99, s.P999 = median(rate), median(p50), median(p99), median(p999)
	s.BrokerCPU, s.LoadCPU = median(bcpu), median(lcpu)
	return s
}

func loadOnce(ctx context.Context, env *benchEnv, kind string, spec loadSpec) (loadResult, error) {
	t, err := startTarget(env, kind)
	if err != nil {
		return loadResult{}, err
	}
	spec.Broker, spec.BrokerPID = t.url(), t.pid()
	if kind == kindWeirTLS {
		spec.TLS = env.deviceTLS
	}
	r, err := runLoad(ctx, spec)
	if serr := t.stop(); err == nil {
		err = serr
	}
	return r, err
}

func idleOnce(ctx context.Context, env *benchEnv, kind string, n int, wait time.Duration) (idleRun, error) {
	t, err := startTarget(env, kind)
	if err != nil {
		return idleRun{}, err
	}
	defer t.stop()
	// Let start-up allocations settle before the baseline.
	if !sleep(ctx, time.Second) {
		return idleRun{}, ctx.Err()
	}
	var r idleRun
	if r.BeforeKiB, err = rssKiB(t.pid()); err != nil {
		return r, err
	}
	conns, err := dialIdle(ctx, t.fleetAddr(), n, t.deviceTLS(env))
	if err != nil {
		return r, err
	}
	defer conns.Close()
	if env.idlePublish {
		if err := conns.publishEach(env.size); err != nil {
			return r, err
		}
	}
	// Connections settle: per-client goroutines park, buffers are sized.
	if !sleep(ctx, wait) {
		return r, ctx.Err()
	}
	if r.AfterKiB, err = rssKiB(t.pid()); err != nil {
		return r, err
	}
	r.PerDevice = float64(r.AfterKiB-r.BeforeKiB) / float64(n)
	return r, nil
}

// handshakesOnce measures connects/s against a fresh broker of kind.
func handshakesOnce(ctx context.Context, env *benchEnv, kind string, workers int, window time.Duration) (handshakeResult, error) {
	t, err := startTarget(env, kind)
	if err != nil {
		return handshakeResult{}, err
	}
	r, err := runHandshakes(ctx, t.fleetAddr(), workers, window, t.pid(), t.deviceTLS(env))
	r.ClientCert = kind == kindWeirTLS && env.mtls
	if serr := t.stop(); err == nil {
		err = serr
	}
	return r, err
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func machineInfo() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return m
}

func printText(w io.Writer, r *Report) {
	s := r.Settings
	var extra string
	if s.CommitDelay != "" {
		extra += ", commit_delay " + s.CommitDelay
	}
	if s.NoStore {
		extra += ", NOTHING STORED (--no-store)"
	}
	fmt.Fprintf(w, "weir-bench: %s, %d cores, %s; fleet %d devices, QoS 1, %d-byte payloads; weir fsync %s, %d shards, rate limits off%s\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.Go, s.Devices, s.Size, s.Fsync, s.Shards, extra)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	runs := func(ser series) string {
		var parts []string
		for _, x := range ser.Runs {
			parts = append(parts, fmt.Sprintf("%.0f", x.MsgsPerSec))
		}
		return strings.Join(parts, " ")
	}
	if t := r.Throughput; t != nil {
		fmt.Fprintf(w, "\nthroughput, as fast as acks allow (%v per run after %v warm-up, %d rounds, medians):\n", s.Duration, s.Warmup, s.Rounds)
		fmt.Fprintf(w, "  weir  %8.0f acked msgs/s  (runs: %s)  p50 %.2f ms  p99 %.2f ms\n", t.Weir.Median, runs(t.Weir), t.Weir.P50, t.Weir.P99)
		fmt.Fprintf(w, "  bare  %8.0f acked msgs/s  (runs: %s)  p50 %.2f ms  p99 %.2f ms\n", t.Bare.Median, runs(t.Bare), t.Bare.P50, t.Bare.P99)
		v := verdict(t.Ratio >= t.Target)
		if s.NoStore {
			v = "not applicable with --no-store"
		}
		fmt.Fprintf(w, "  ratio weir/bare %.2f  (target ≥ %.2f: %s)\n", t.Ratio, t.Target, v)
		fmt.Fprintf(w, "  CPU per acked msg, µs (broker + load generator; they share the cores): weir %.1f + %.1f = %.1f, bare %.1f + %.1f = %.1f\n",
			t.Weir.BrokerCPU, t.Weir.LoadCPU, t.Weir.BrokerCPU+t.Weir.LoadCPU, t.Bare.BrokerCPU, t.Bare.LoadCPU, t.Bare.BrokerCPU+t.Bare.LoadCPU)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nlatency, paced: %d devices × %.0f msg/s = %.0f msg/s offered (publish→PUBACK, medians of %d runs):\n", s.Devices, s.Rate, l.Offered, s.Rounds)
		for _, x := range []struct {
			name string
			ser  series
		}{{"weir", l.Weir}, {"bare", l.Bare}} {
			fmt.Fprintf(w, "  %s  p50 %6.2f ms  p99 %6.2f ms  p999 %6.2f ms  (achieved %.0f msgs/s)\n", x.name, x.ser.P50, x.ser.P99, x.ser.P999, x.ser.Median)
		}
		fmt.Fprintf(w, "  weir p99 target ≤ %.0f ms: %s\n", l.TargetP99, verdict(l.Weir.P99 <= l.TargetP99))
	}
	if x := r.TLS; x != nil {
		fmt.Fprintf(w, "\nTLS ingest (%s), same fleet, weir over TLS vs plain (%v per run, %d rounds, medians):\n", tlsKind(x.MTLS), s.Duration, s.Rounds)
		fmt.Fprintf(w, "  tls    %8.0f acked msgs/s  (runs: %s)  p50 %.2f ms  p99 %.2f ms\n", x.TLS.Median, runs(x.TLS), x.TLS.P50, x.TLS.P99)
		fmt.Fprintf(w, "  plain  %8.0f acked msgs/s  (runs: %s)  p50 %.2f ms  p99 %.2f ms\n", x.Plain.Median, runs(x.Plain), x.Plain.P50, x.Plain.P99)
		fmt.Fprintf(w, "  ratio tls/plain %.2f  (target ≥ %.2f: %s)\n", x.Ratio, x.Target, verdict(x.Ratio >= x.Target))
	}
	if h := r.Handshakes; h != nil {
		fmt.Fprintf(w, "\nconnects/s, %d devices connecting at once (TCP [+ TLS] + CONNECT/CONNACK + close, medians of %d):\n", s.HSWorkers, s.Rounds)
		fmt.Fprintf(w, "  %-5s %7.0f connects/s\n  plain %7.0f connects/s\n", tlsKind(h.MTLS), h.TLSMedian, h.PlainMedian)
	}
	if i := r.TLSIdle; i != nil {
		fmt.Fprintf(w, "\nidle footprint over %s: %d devices, RSS growth per device %v after the last CONNACK (median of %d):\n", tlsKind(i.MTLS), i.Devices, s.IdleWait, s.Rounds)
		fmt.Fprintf(w, "  tls    %6.1f KiB/device\n  plain  %6.1f KiB/device\n", i.TLS.Median, i.Plain.Median)
		if m := i.Mosquitto; m != nil && m.Median > 0 {
			fmt.Fprintf(w, "  mosquitto %s %6.1f KiB/device (weir/mosquitto %.2f)\n", tlsKind(i.MTLS), m.Median, i.TLS.Median/m.Median)
		}
		fmt.Fprintf(w, "  tls target ≤ %.0f KiB: %s\n", i.TargetKiB, verdict(i.TLS.Median <= i.TargetKiB))
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(w, "\nidle footprint: %d devices connected with a raw CONNECT, broker RSS growth per device (median of %d):\n", i.Devices, s.Rounds)
		fmt.Fprintf(w, "  weir  %6.1f KiB/device\n  bare  %6.1f KiB/device\n", i.Weir.Median, i.Bare.Median)
		fmt.Fprintf(w, "  weir target ≤ %.0f KiB: %s\n", i.TargetKiB, verdict(i.Weir.Median <= i.TargetKiB))
	}
}

func tlsKind(mtls bool) string {
	if mtls {
		return "mTLS"
	}
	return "TLS"
}
