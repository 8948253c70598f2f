package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// loadSpec is one run of the device fleet against one broker.
type loadSpec struct {
	Broker   string // tcp://host:port
	Devices  int
	Size     int     // payload bytes
	Rate     float64 // messages/s per device; 0 = as fast as acks allow
	Warmup   time.Duration
	Duration time.Duration
	// TLS, when set, gives each device (by client id) its TLS config;
	// Broker is then an ssl:// URL.
	TLS func(id string) (*tls.Config, error)
	// BrokerPID, when set, has the run measure the CPU the broker process
	// and this load generator spend per acked message.
	BrokerPID int
}

// loadResult covers the measurement window only (after the warm-up).
type loadResult struct {
	Acked      uint64  `json:"acked"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Latency    Latency `json:"latency"`
	Errors     uint64  `json:"errors"`
	// Behind counts paced publishes that started late because the
	// previous one was still waiting for its PUBACK.
	Behind uint64 `json:"behind_schedule,omitempty"`
	// CPU per acked message over the measurement window, µs: with the
	// broker and the fleet on the same cores, throughput is bounded by
	// their sum, so these say where a difference between brokers comes from.
	BrokerCPU float64 `json:"broker_cpu_us_per_msg,omitempty"`
	LoadCPU   float64 `json:"load_cpu_us_per_msg,omitempty"`
}

// runLoad connects every device first (so the connect storm is not
// measured), then has each publish QoS 1 with one message in flight, like
// firmware that waits for each PUBACK. Devices are paho clients, as on
// real Go firmware, each in its own goroutine.
func runLoad(ctx context.Context, s loadSpec) (loadResult, error) {
	clients := make([]paho.Client, s.Devices)
	var connErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("bench-%05d", i+1)
			opts := paho.NewClientOptions().AddBroker(s.Broker).SetClientID(id).
				SetCleanSession(true).SetAutoReconnect(false).SetKeepAlive(60 * time.Second).
				SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
			if s.TLS != nil {
				tc, err := s.TLS(id)
				if err != nil {
					mu.Lock()
					connErr = fmt.Errorf("%s: TLS config: %w", id, err)
					mu.Unlock()
					return
				}
				opts.SetTLSConfig(tc)
			}
			c := paho.NewClient(opts)
			tok := c.Connect()
			if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
				mu.Lock()
				connErr = fmt.Errorf("connect %s: %v", id, tok.Error())
				mu.Unlock()
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Disconnect(100)
			}
		}
	}()
	if connErr != nil {
		return loadResult{}, connErr
	}

	start := time.Now()
	from, to := start.Add(s.Warmup), start.Add(s.Warmup+s.Duration)
	var acked, errs, behind atomic.Uint64
	cpuDone := make(chan [2]time.Duration, 1)
	if s.BrokerPID > 0 {
		go func() { cpuDone <- cpuOverWindow(ctx, s.BrokerPID, from, to) }()
	}
	samples := make([][]time.Duration, s.Devices)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := fmt.Sprintf("devices/bench-%05d/telemetry", i+1)
			data := make([]byte, s.Size)
			for j := range data {
				data[j] = byte('a' + (i+j)%26)
			}
			var interval time.Duration
			next := start
			if s.Rate > 0 {
				interval = time.Duration(float64(time.Second) / s.Rate)
				// A random phase, so the fleet's publishes spread evenly.
				next = start.Add(time.Duration(rand.Int64N(int64(interval))))
			}
			lat := make([]time.Duration, 0, 1024)
			for ctx.Err() == nil {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					} else if -d > interval {
						behind.Add(1)
						next = time.Now()
					}
					next = next.Add(interval)
				}
				t0 := time.Now()
				if !t0.Before(to) {
					break
				}
				tok := c.Publish(topic, 1, false, data)
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					errs.Add(1)
					break
				}
				t1 := time.Now()
				if !t0.Before(from) && !t1.After(to) {
					acked.Add(1)
					lat = append(lat, t1.Sub(t0))
				}
			}
			samples[i] = lat
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range samples {
		all = append(all, l...)
	}
	r := loadResult{Acked: acked.Load(), Errors: errs.Load(), Behind: behind.Load(), Latency: latencyOf(all)}
	r.MsgsPerSec = float64(r.Acked) / s.Duration.Seconds()
	if s.BrokerPID > 0 && r.Acked > 0 {
		select {
		case c := <-cpuDone:
			r.BrokerCPU = float64(c[0].Microseconds()) / float64(r.Acked)
			r.LoadCPU = float64(c[1].Microseconds()) / float64(r.Acked)
		case <-ctx.Done():
		}
	}
	if r.Errors > 0 {
		return r, fmt.Errorf("%d devices stopped on a publish error or a PUBACK that took over 10s", r.Errors)
	}
	return r, ctx.Err()
}

// cpuOverWindow returns the CPU time the broker process and this process
// spent between from and to (zero if either cannot be read).
func cpuOverWindow(ctx context.Context, pid int, from, to time.Time) [2]time.Duration {
	wait := func(t time.Time) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Until(t)):
			return true
		}
	}
	if !wait(from) {
		return [2]time.Duration{}
	}
	b0, err0 := procCPU(pid)
	s0 := selfCPU()
	if !wait(to) {
		return [2]time.Duration{}
	}
	b1, err1 := procCPU(pid)
	s1 := selfCPU()
	if err0 != nil || err1 != nil {
		return [2]time.Duration{}
	}
	return [2]time.Duration{b1 - b0, s1 - s0}
}

// procCPU is a process's user + system time from /proc/PID/stat, in clock
// ticks of 10 ms (USER_HZ is 100 on every Linux this runs on).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields that follow it don't.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
