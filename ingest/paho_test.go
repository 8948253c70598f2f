package ingest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-gateway/weir/shards"
)

// A real MQTT 3.1.1 device library: a refused QoS 1 publish is not
// acknowledged; the client is disconnected, reconnects, resends, and the
// resend is stored.
func TestMQTT311ResendAfterRefusal(t *testing.T) {
	var attempts atomic.Int32
	sink := &fakeSink{fn: func(context.Context, string, *shards.Record, shards.AppendOptions) error {
		if attempts.Add(1) <= 2 {
			return shards.ErrThrottled
		}
		return nil
	}}
	b := startBroker(t, sink, brokerOpts{})

	var lost atomic.Int32
	opts := paho.NewClientOptions().
		AddBroker("tcp://" + b.Addr().String()).
		SetClientID("paho-dev").
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(100 * time.Millisecond).
		SetConnectTimeout(2 * time.Second).
		SetOrderMatters(false).
		SetConnectionLostHandler(func(paho.Client, error) { lost.Add(1) })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)

	// Wait for the store, not the token: when paho resends a stored
	// publish after reconnecting it completes the original token with no
	// error at once (messageIds.claimID calls flowComplete on it) and
	// tracks the resend with a new, internal token. A device that takes
	// token.Wait() for "acknowledged" is wrong after any reconnect.
	tok := c.Publish("devices/paho-dev/telemetry", 1, false, []byte("reading-1"))
	waitFor(t, "the resend to be stored", func() bool { return b.Stats().Stored == 1 })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish token: %v", tok.Error())
	}
	got := sink.stored()
	if len(got) != 1 || string(got[0].rec.Data) != "reading-1" || got[0].rec.Key != "paho-dev" {
		t.Fatalf("stored %+v, want the resent publish once", got)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("sink saw %d attempts, want 3 (two refusals, one resend stored)", n)
	}
	s := b.Stats()
	if s.Disconnected != 2 || s.Refused.QuotaExceeded != 2 || s.Stored != 1 {
		t.Errorf("stats = %+v", s)
	}
	if lost.Load() != 2 {
		t.Errorf("client lost its connection %d times, want 2", lost.Load())
	}
}
