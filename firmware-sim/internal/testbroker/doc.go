// Package testbroker starts an in-process mochi MQTT broker on a free
// loopback port for the simulator's tests, with hooks that count what the
// broker saw (connects per client, publishes per topic, refusals).
package testbroker
