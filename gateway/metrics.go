package gateway

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/weir-gateway/weir/internal/fsutil"
)

// newRegistry is the daemon's one metrics registry: every part (store,
// API, broker, forwarders) registers its collector on it and removes it
// when it closes; the API serves it on /metrics. Nothing is global, so
// daemons in one process (tests) never collide.
func newRegistry(version, dataDir string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(version),
		&diskCollector{dir: dataDir,
			free: prometheus.NewDesc("weir_data_dir_free_bytes", "Bytes free for weir on the filesystem holding the data directory (statfs f_bavail at scrape time).", nil, nil),
			used: prometheus.NewDesc("weir_data_dir_used_bytes", "Bytes used on the filesystem holding the data directory, by anything.", nil, nil),
			size: prometheus.NewDesc("weir_data_dir_size_bytes", "Size of the filesystem holding the data directory.", nil, nil),
		},
	)
	return reg
}

// buildInfo is weir_build_info{version,revision,goversion} 1: the version
// stamped by -ldflags, the VCS revision Go recorded at build time.
func buildInfo(version string) prometheus.Collector {
	if version == "" {
		version = "dev"
	}
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "weir_build_info",
		Help:        "Always 1; the labels say which weir build is running.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
}

// diskCollector reads the data directory's filesystem at scrape time:
// one statfs per scrape, nothing in between.
type diskCollector struct {
	dir              string
	free, used, size *prometheus.Desc
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.used
	ch <- c.size
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	sp, err := fsutil.SpaceOf(c.dir)
	if err != nil {
		// Reported by promhttp as a scrape error beside the other
		// families (ContinueOnError), never as a made-up zero.
		ch <- prometheus.NewInvalidMetric(c.free, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(sp.Free))
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(sp.Used))
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(sp.Size))
}
