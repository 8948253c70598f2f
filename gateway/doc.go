// Package gateway wires weir's parts into one daemon: the shard store
// (package shards), the embedded MQTT broker (package ingest), the
// Kinesis-compatible API (package gateway/api) and the forwarders (package
// forwarder). The command line lives in gateway/cmd/weir.
//
// Start order is storage first, then the readers and writers that use it;
// Close runs in reverse: stop taking publishes, let commits in flight finish,
// stop forwarders and the API, then sync and close the logs.
//
// The daemon owns one Prometheus registry (metrics.go): Go, process, build
// and data-directory collectors of its own, and each part's collector,
// registered when the part is made and removed when it closes; the API
// serves it on /metrics. Readiness (health.go) is what /readyz answers
// and what decides the systemd watchdog: WATCHDOG=1 only while ready.
//
// Logs: one zerolog logger; the key part names the component (mqtt, api,
// shards, forwarder, reload), and durations are logged in milliseconds
// with _ms in the key.
package gateway
