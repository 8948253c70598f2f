package ingest

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/shards"
)

// waitingSink hides the store's AppendDeferred, so the hook waits on the
// read goroutine for each fsync (the path before issue 12).
type waitingSink struct{ Sink }

// BenchmarkStoredPublish is the durable ingest path in one process: 100
// raw MQTT 3.1.1 devices on loopback, each publishing QoS 1, 200 B, and
// waiting for the PUBACK before the next, to a broker storing in 4 shards
// with fsync always. It reports the process's CPU per acknowledged
// message (devices included: they are the same in both cases), for the
// deferred acknowledgement against the hook that waits.
//
//	go test -run '^$' -bench StoredPublish -benchtime 20000x -count 3 ./ingest/
func BenchmarkStoredPublish(b *testing.B) {
	for _, fsync := range []string{shards.FsyncAlways, shards.FsyncInterval} {
		for _, mode := range []string{"deferred", "waiting"} {
			b.Run("fsync="+fsync+"/"+mode, func(b *testing.B) { benchStoredPublish(b, fsync, mode) })
		}
	}
}

func benchStoredPublish(b *testing.B, fsync, mode string) {
	{
		{
			st, err := shards.Open(b.TempDir(), shards.Options{
				Durability:      shards.Durability{Fsync: fsync},
				Streams:         []shards.StreamConfig{{Name: "telemetry", Shards: 4}},
				Logger:          zerolog.Nop(),
				NoRetentionLoop: true,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var sink Sink = st
			if mode == "waiting" {
				sink = waitingSink{st}
			}
			br := startBroker(b, sink, brokerOpts{})
			const devices = 100
			clients := make([]*rawClient, devices)
			for i := range clients {
				clients[i], _ = dialRaw(b, br.Addr(), fmt.Sprintf("dev-%03d", i), 4)
			}
			payload := make([]byte, 200)
			per := (b.N + devices - 1) / devices
			syncs0 := storeSyncs(st)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs0 := ms.Mallocs
			cpu0, cs0 := processCPU(), ctxSwitches()
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					topic := fmt.Sprintf("devices/dev-%03d/telemetry", i)
					for j := range per {
						id := uint16(j%60000 + 1)
						if err := c.trySend(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
							TopicName: topic, PacketID: id, Payload: payload}); err != nil {
							b.Error(err)
							return
						}
						pk, err := c.read(10 * time.Second)
						if err != nil || pk.FixedHeader.Type != packets.Puback || pk.PacketID != id {
							b.Errorf("%s: want PUBACK %d, got type %d id %d, %v", topic, id, pk.FixedHeader.Type, pk.PacketID, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			n := float64(per * devices)
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/n, "cpu-µs/msg")
			b.ReportMetric(n/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(n/float64(storeSyncs(st)-syncs0), "msgs/sync")
			b.ReportMetric(float64(ctxSwitches()-cs0)/n, "ctxsw/msg")
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.Mallocs-mallocs0)/n, "allocs/msg")
		}
	}
}

func storeSyncs(st *shards.Store) uint64 {
	s, _ := st.Stream("telemetry")
	return s.LogStats().Syncs
}

// ctxSwitches sums the context switches of the process's threads: each
// time a thread sleeps (futex, epoll) or is preempted. Less disturbed by
// other load on the machine than CPU time.
func ctxSwitches() int64 {
	dirs, _ := os.ReadDir("/proc/self/task")
	var n int64
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/self/task/" + d.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			}
		}
	}
	return n
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
