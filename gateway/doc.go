// Package gateway wires weir's parts into one daemon: the shard store
// (package shards), the embedded MQTT broker (package ingest), the
// Kinesis-compatible API (package gateway/api) and the forwarders (package
// forwarder). The command line lives in gateway/cmd/weir.
//
// Start order is storage first, then the readers and writers that use it;
// Close runs in reverse: stop taking publishes, let commits in flight finish,
// stop forwarders and the API, then sync and close the logs.
package gateway
