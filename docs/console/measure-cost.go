//go:build ignore

// measure-cost measures what open console pages cost the gateway: RSS and
// CPU of a running weir over 60 s with no browser, then with 3 headless
// Chromium tabs on the overview (live over server-sent events), then with
// 3 tabs on the overview, the streams page and a live record tail.
// A fleet of 100 MQTT clients publishes 200 msg/s throughout.
//
//	go build -o /tmp/weir ./gateway/cmd/weir
//	go run docs/console/measure-cost.go -weir /tmp/weir [-for 60s]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cpuTicks is utime+stime of pid, in clock ticks (100 a second on Linux).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func measure(name string, pid int, d time.Duration) {
	t0, c0 := time.Now(), cpuTicks(pid)
	var sum, peak, n int64
	for time.Since(t0) < d {
		time.Sleep(time.Second)
		r := rssKiB(pid)
		sum, n, peak = sum+r, n+1, max(peak, r)
	}
	cpu := float64(cpuTicks(pid)-c0) / 100 / time.Since(t0).Seconds() * 100
	fmt.Printf("%-36s CPU %5.1f%% of one core   RSS avg %6.1f MiB  peak %6.1f MiB\n", name, cpu, float64(sum/n)/1024, float64(peak)/1024)
}

func main() {
	bin := flag.String("weir", "/tmp/weir", "weir binary")
	dur := flag.Duration("for", 60*time.Second, "each measurement")
	flag.Parse()
	dir, _ := os.MkdirTemp("", "weir-console-cost")
	defer os.RemoveAll(dir)
	mqttAddr := "127.0.0.1:" + strconv.Itoa(freePort())
	apiAddr := "127.0.0.1:" + strconv.Itoa(freePort())
	cfg := fmt.Sprintf("data_dir: %s\nlog: {level: warn}\nmqtt:\n  listen: %s\napi:\n  listen: %s\nstreams:\n  - name: telemetry\n    shards: 4\nroutes:\n  - filter: devices/+/telemetry\n    stream: telemetry\n    partition_key: \"{topic.1}\"\n",
		filepath.Join(dir, "data"), mqttAddr, apiAddr)
	if err := os.WriteFile(filepath.Join(dir, "weir.yaml"), []byte(cfg), 0o644); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(*bin, "serve", "--config", filepath.Join(dir, "weir.yaml"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	for range 100 {
		if c, err := net.Dial("tcp", mqttAddr); err == nil {
			c.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var sent atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for i := range 100 {
		id := fmt.Sprintf("dev-%03d", i)
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID(id))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			log.Fatalf("connect: %v", tok.Error())
		}
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.Publish("devices/"+id+"/telemetry", 1, false, fmt.Sprintf(`{"id":%q,"t":21.5,"n":%d}`, id, sent.Add(1))).Wait()
				}
			}
		}()
	}
	time.Sleep(10 * time.Second) // warm up: connections, first samples
	pid := cmd.Process.Pid
	measure("no browser", pid, *dur)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "chromium")), chromedp.WindowSize(1280, 900))
	defer cancel()
	browser, cancelB := chromedp.NewContext(alloc)
	defer cancelB()
	if err := chromedp.Do(browser); err != nil {
		log.Fatal(err)
	}
	base := "http://" + apiAddr + "/console/"
	open := func(pages ...string) []context.CancelFunc {
		var cs []context.CancelFunc
		for _, p := range pages {
			tab, c := chromedp.NewContext(browser)
			if err := chromedp.Do(tab, chromedp.Navigate(base+p)); err != nil {
				log.Fatal(err)
			}
			cs = append(cs, c)
		}
		return cs
	}
	tabs := open("#/overview", "#/overview", "#/overview")
	time.Sleep(5 * time.Second)
	measure("3 tabs on the overview", pid, *dur)
	for _, c := range tabs {
		c()
	}
	tabs = open("#/overview", "#/streams", "#/records?stream=telemetry")
	time.Sleep(5 * time.Second)
	measure("overview + streams + live records", pid, *dur)
	for _, c := range tabs {
		c()
	}
	fmt.Printf("fleet: 100 clients, %d publishes in all\n", sent.Load())
}
