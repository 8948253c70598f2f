package main

import (
	"flag"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func load(addr string, n int, d time.Duration) (float64, time.Duration) {
	var acked atomic.Int64
	var wg sync.WaitGroup
	lats := make([][]time.Duration, n)
	stop := time.Now().Add(d)
	payload := make([]byte, 200)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("dev-%d-%d", i, time.Now().UnixNano()))
			c := paho.NewClient(o)
			if t := c.Connect(); t.Wait() && t.Error() != nil {
				panic(t.Error())
			}
			defer c.Disconnect(0)
			for time.Now().Before(stop) {
				t0 := time.Now()
				t := c.Publish(fmt.Sprintf("devices/dev-%d/telemetry", i), 1, false, payload)
				t.Wait()
				if t.Error() == nil {
					acked.Add(1)
					lats[i] = append(lats[i], time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	return float64(acked.Load()) / d.Seconds(), all[len(all)*99/100]
}

func main() {
	addr := flag.String("addr", "", "weir address")
	d := flag.Duration("d", 5*time.Second, "")
	serve := flag.String("serve", "", "only run a bare broker on this address")
	flag.Parse()
	if *serve != "" {
		srv := mqtt.New(&mqtt.Options{InlineClient: false})
		srv.AddHook(new(auth.AllowHook), nil)
		srv.AddListener(listeners.NewTCP(listeners.Config{ID: "s", Address: *serve}))
		srv.Serve()
		select {}
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false})
	srv.AddHook(new(auth.AllowHook), nil)
	srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:18830"}))
	go srv.Serve()
	time.Sleep(200 * time.Millisecond)
	for r := 0; r < 2; r++ {
		w, wp := load(*addr, 100, *d)
		b, bp := load("127.0.0.1:18830", 100, *d)
		fmt.Printf("weir %.0f/s p99 %v   bare %.0f/s p99 %v   ratio %.2f\n", w, wp, b, bp, w/b)
	}
}
