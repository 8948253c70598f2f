package gateway

import (
	"github.com/weir-gateway/weir/forwarder"
	"github.com/weir-gateway/weir/gateway/api"
	"github.com/weir-gateway/weir/ingest"
)

// liveParts are what the API's status hooks read. The API starts serving
// before Start has made the broker and the forwarders (harnesses may call
// it as soon as MQTT accepts), so the hooks read this snapshot, published
// once Start has them all, never the Daemon's fields being written.
type liveParts struct {
	broker *ingest.Broker
	fwds   []*forwarder.Forwarder
}

// forwarderStatus reports every forwarder's Lag for DescribeGateway and
// /readyz. (Their metrics are each forwarder's own collector.)
func (d *Daemon) forwarderStatus() []api.ForwarderStatus {
	p := d.live.Load()
	if p == nil {
		return nil
	}
	out := make([]api.ForwarderStatus, 0, len(p.fwds))
	for _, f := range p.fwds {
		cfg, lag := f.Config(), f.Lag()
		out = append(out, api.ForwarderStatus{
			Stream: cfg.Stream, TargetStream: cfg.Target(), Consumer: f.Consumer(), Kind: cfg.Kind, Sink: cfg.SinkName(),
			Records: lag.Records, Bytes: lag.Bytes, OldestAge: lag.OldestAge,
			State: lag.State.String(), LastError: lag.LastError, Sent: lag.Sent, Resent: lag.Resent, Lost: lag.Lost, Filtered: lag.Filtered,
		})
	}
	return out
}
