// Package fleet plays a fleet of simulated MQTT devices against a broker:
// the engine behind the firmware-sim CLI, usable directly from Go tests
// and benchmarks:
//
//	sum, err := fleet.Run(ctx, fleet.Config{
//		Broker: "tcp://127.0.0.1:1883",
//		Groups: []fleet.Group{{Count: 100, Messages: 50, Rate: 10, QoS: 1}},
//		Ledger: ledgerFile,
//	})
//
// Each device is a paho client with its own ordered memory store, and
// otherwise costs a few hundred bytes: devices own no goroutines. One
// scheduler goroutine generates every device's messages at its rate (an
// absolute schedule with jitter around an exact mean, so the offered load
// does not sag when the machine is busy), a small pool of workers hands
// them to paho, and acknowledgements come back through the store (paho
// deletes a message from its store on PUBACK/PUBCOMP), so nothing waits on
// a publish token. Like real firmware, a device has one message in flight
// (Group.Inflight raises that) and publishes in sequence order; messages
// produced while it is offline are buffered and sent in order when it is
// back; what was in flight when the connection dropped is resent by paho
// before anything newer.
//
// Misbehaviour: storms and outages (Config.Events) cut connections the
// way a lost uplink would and hold reconnects for Down plus jitter; slow
// links, periodic offline windows, duplicate client ids, oversize and
// unrouted probes are per-group Behaviour.
package fleet
