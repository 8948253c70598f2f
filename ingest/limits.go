package ingest

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/weir-gateway/weir/internal/conf"
)

// Defaults of the abuse limits, sized so that a 1 GiB Raspberry Pi stays
// alive whatever its clients do:
//   - 10,000 connections cost ~120 MiB idle (12 KiB each) and ~240 MiB
//     right after each has published (the read loop's stack grows to
//     16 KiB until GCs shrink it back);
//   - 100 subscriptions per client and 50,000 in all: one client held
//     700-800 MB with 200,000; a subscription to a filter of its own
//     costs ~2.5 KiB in mochi's topic tree and maps, so 50,000 cost
//     ~125 MiB at most;
//   - 10,000 retained messages and 16 MiB of them: each costs its topic
//     and payload plus ~1.5 KiB (mochi's packet struct, map entry and
//     topic-tree node), so ~31 MiB live at most (~41 MiB of heap in use
//     with 2 KB payloads: freed read buffers between them). Upstream
//     also pinned each message's whole read buffer through its topic
//     string, holding every retained byte twice (PATCHES.md);
//   - disconnected sessions are kept an hour, not a day or forever.
const (
	DefaultMaxConnections   = 10000
	DefaultMaxSubscriptions = 100
	DefaultMaxSubsTotal     = 50000
	DefaultRetainedMessages = 10000
	DefaultRetainedBytes    = 16 * conf.MiB
	DefaultMaxQoS2Pending   = 32
	DefaultSessionExpiryMax = conf.Duration(time.Hour)
	// maxSessionExpirySeconds is the largest MQTT 5 session expiry
	// interval that is not "never expires" (0xFFFFFFFF).
	maxSessionExpirySeconds = 1<<32 - 2
)

// RetainedLimits is `mqtt.retained`: how many retained messages, and how
// many bytes of them (topic + payload), the broker keeps across all topics.
type RetainedLimits struct {
	MaxMessages int           `yaml:"max_messages"`
	MaxBytes    conf.ByteSize `yaml:"max_bytes"`
}

// Sentinel errors of the limits, in the "publish refused" log lines.
var (
	// ErrRetainedFull: a retained publish would take the retained
	// messages past mqtt.retained.max_messages or max_bytes.
	ErrRetainedFull = errors.New("ingest: retained message cap reached (mqtt.retained)")
	// ErrQoS2Pending: a QoS 2 publish from a client that already has
	// mqtt.max_qos2_pending publishes waiting for their PUBREL.
	ErrQoS2Pending = errors.New("ingest: too many QoS 2 publishes awaiting PUBREL (mqtt.max_qos2_pending)")
)

func (c *Config) limitDefaults() {
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if c.MaxSubsTotal == 0 {
		c.MaxSubsTotal = DefaultMaxSubsTotal
	}
	if c.Retained.MaxMessages == 0 {
		c.Retained.MaxMessages = DefaultRetainedMessages
	}
	if c.Retained.MaxBytes == 0 {
		c.Retained.MaxBytes = DefaultRetainedBytes
	}
	if c.MaxQoS2Pending == 0 {
		c.MaxQoS2Pending = DefaultMaxQoS2Pending
	}
	if c.SessionExpiryMax == 0 {
		c.SessionExpiryMax = DefaultSessionExpiryMax
	}
}

func (c Config) validateLimits() []error {
	var errs conf.ErrorList
	if c.MaxConnections < 1 {
		errs.Add("max_connections", "must be at least 1, got %d", c.MaxConnections)
	}
	if c.MaxSubscriptions < 1 {
		errs.Add("max_subscriptions", "must be at least 1, got %d", c.MaxSubscriptions)
	}
	if c.MaxSubsTotal < 1 {
		errs.Add("max_subscriptions_total", "must be at least 1, got %d", c.MaxSubsTotal)
	}
	if c.Retained.MaxMessages < 1 {
		errs.Add("retained.max_messages", "must be at least 1, got %d", c.Retained.MaxMessages)
	}
	if c.Retained.MaxBytes < conf.KiB {
		errs.Add("retained.max_bytes", "must be at least 1KiB, got %v", c.Retained.MaxBytes)
	}
	if c.MaxQoS2Pending < 1 || c.MaxQoS2Pending > 65535 {
		errs.Add("max_qos2_pending", "must be 1..65535, got %d", c.MaxQoS2Pending)
	}
	if c.SessionExpiryMax < conf.Duration(time.Second) || c.SessionExpiryMax.D() > maxSessionExpirySeconds*time.Second {
		errs.Add("session_expiry_max", "must be 1s..%v, got %v", conf.Duration(maxSessionExpirySeconds*time.Second), c.SessionExpiryMax)
	}
	return errs
}

// limitEvent is a refusal of the limits or of protocol strictness that
// does not pass through the publish hook's refuse; it indexes counters.
type limitEvent uint8

const (
	limitConnections limitEvent = iota
	limitSubscriptions
	limitSubsTotal
	limitSysPublish
	limitTopicName
	limitProtocolError
	numLimitEvents
)

var limitNames = [numLimitEvents]string{
	limitConnections:   "max_connections",
	limitSubscriptions: "max_subscriptions",
	limitSubsTotal:     "max_subscriptions_total",
	limitSysPublish:    "sys_publish",
	limitTopicName:     "topic_name_invalid",
	limitProtocolError: "protocol_error",
}

// mochiRefusals maps what the patched mochi reports through
// Options.OnRefused to the counter it goes to.
var mochiRefusals = map[mqtt.Refusal]limitEvent{
	mqtt.RefusedSubscription:      limitSubscriptions,
	mqtt.RefusedSubscriptionTotal: limitSubsTotal,
	mqtt.RefusedSysPublish:        limitSysPublish,
	mqtt.RefusedTopicName:         limitTopicName,
	mqtt.RefusedProtocolError:     limitProtocolError,
}

// limitsHook enforces the limits that need a hook: the connection cap (in
// OnConnect, so the refused client gets a CONNACK that says why) and the
// retained-message accounting. The subscription caps are mochi's
// (Capabilities.MaximumClientSubscriptions and MaximumSubscriptions,
// patched in); the publish-time
// checks run from the publish hook (admit), so that a refused publish is
// counted with the others and never stored.
type limitsHook struct {
	mqtt.HookBase
	server   *mqtt.Server
	maxConns int64
	maxQoS2  int
	retained retainedCap
	stats    *counters
	log      zerolog.Logger
	logLimit [numLimitEvents]*limiter
}

func newLimitsHook(cfg Config, server *mqtt.Server, stats *counters, log zerolog.Logger) *limitsHook {
	h := &limitsHook{
		server:   server,
		maxConns: int64(cfg.MaxConnections),
		maxQoS2:  cfg.MaxQoS2Pending,
		retained: retainedCap{
			maxMessages: cfg.Retained.MaxMessages,
			maxBytes:    int64(cfg.Retained.MaxBytes),
			sizes:       make(map[string]int64),
		},
		stats: stats,
		log:   log,
	}
	for i := range h.logLimit {
		h.logLimit[i] = newLimiter(refusalLogInterval)
	}
	return h
}

func (h *limitsHook) ID() string { return "weir-limits" }

func (h *limitsHook) Provides(b byte) bool {
	return b == mqtt.OnConnect || b == mqtt.OnRetainMessage || b == mqtt.OnRetainedExpired
}

// OnConnect refuses a client past max_connections with CONNACK 0x97 Quota
// exceeded (MQTT 3.1.1: 3 Server unavailable). A client whose id is
// connected already is let through: it takes over that session, so the
// count does not grow.
func (h *limitsHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if atomic.LoadInt64(&h.server.Info.ClientsConnected) < h.maxConns {
		return nil
	}
	if old, ok := h.server.Clients.Get(cl.ID); ok && !old.Closed() {
		return nil
	}
	code := packets.Code{Code: packets.ErrQuotaExceeded.Code, Reason: "quota exceeded: mqtt.max_connections reached"}
	_ = h.server.SendConnack(cl, code, false, nil)
	h.refused(cl, limitConnections)
	return code
}

// refused counts one refusal mochi or this hook made and logs it, at most
// once a second per kind.
func (h *limitsHook) refused(cl *mqtt.Client, ev limitEvent) {
	h.stats.limits[ev].Add(1)
	ok, suppressed := h.logLimit[ev].allow(time.Now())
	if !ok {
		return
	}
	e := h.log.Warn().Str("limit", limitNames[ev]).Str("client_id", cl.ID).
		Uint8("protocol", cl.Properties.ProtocolVersion).Uint64("suppressed", suppressed)
	if cl.Net.Remote != "" {
		e = e.Str("remote", cl.Net.Remote)
	}
	e.Msg("mqtt client refused")
}

// onMochiRefused is the patched mochi's Options.OnRefused.
func (h *limitsHook) onMochiRefused(cl *mqtt.Client, r mqtt.Refusal) {
	if ev, ok := mochiRefusals[r]; ok {
		h.refused(cl, ev)
	}
}

// admit applies the publish-time limits: the retained cap and the cap on
// QoS 2 publishes parked awaiting PUBREL. It runs before the publish is
// routed or stored.
// A nil error admits the publish.
func (h *limitsHook) admit(cl *mqtt.Client, pk *packets.Packet) (refusal, error) {
	if pk.FixedHeader.Retain && len(pk.Payload) > 0 && !h.retained.admit(pk.TopicName, retainedSize(pk)) {
		return refusedRetained, ErrRetainedFull
	}
	if pk.FixedHeader.Qos == 2 && cl.State.Inflight.CountType(packets.Pubrec) >= h.maxQoS2 {
		return refusedQoS2, ErrQoS2Pending
	}
	return 0, nil
}

// OnRetainMessage keeps the retained accounting exact: mochi calls it for
// every retained publish and will message it stores or clears.
func (h *limitsHook) OnRetainMessage(_ *mqtt.Client, pk packets.Packet, _ int64) {
	if len(pk.Payload) == 0 {
		h.retained.remove(pk.TopicName)
		return
	}
	h.retained.set(pk.TopicName, retainedSize(&pk))
}

// OnRetainedExpired: mochi dropped an expired retained message.
func (h *limitsHook) OnRetainedExpired(topic string) { h.retained.remove(topic) }

func retainedSize(pk *packets.Packet) int64 {
	return int64(len(pk.TopicName) + len(pk.Payload))
}

// retainedCap counts the retained messages mochi holds and their bytes.
// admit and set are separate steps (check before storing, account once
// mochi has retained), so publishes racing on different topics can pass
// the check together: the cap can be exceeded by at most one message per
// concurrently publishing client.
type retainedCap struct {
	maxMessages int
	maxBytes    int64

	mu    sync.Mutex
	sizes map[string]int64 // topic -> bytes, for what mochi retains
	bytes int64
}

// admit reports whether a retained message of size bytes on topic fits.
// Replacing an existing message never counts against max_messages, and
// never fails if it is no larger than the message it replaces.
func (c *retainedCap) admit(topic string, size int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, exists := c.sizes[topic]
	if !exists && len(c.sizes) >= c.maxMessages {
		return false
	}
	return size <= old || c.bytes-old+size <= c.maxBytes
}

func (c *retainedCap) set(topic string, size int64) {
	c.mu.Lock()
	old, exists := c.sizes[topic]
	if !exists {
		// mochi's topic string points into the buffer the whole packet
		// was read into; a key of our own does not keep it alive.
		topic = strings.Clone(topic)
	}
	c.bytes += size - old
	c.sizes[topic] = size
	c.mu.Unlock()
}

func (c *retainedCap) remove(topic string) {
	c.mu.Lock()
	c.bytes -= c.sizes[topic]
	delete(c.sizes, topic)
	c.mu.Unlock()
}

func (c *retainedCap) usage() (messages int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sizes), c.bytes
}
