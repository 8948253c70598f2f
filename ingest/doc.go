// Package ingest is the MQTT side of weir: an embedded mochi-mqtt broker
// whose hooks route publishes to streams, render partition keys, store
// records through a Sink (the shards.Store) and acknowledge a publish only
// once it is stored.
//
// # Routing
//
// Routes are tried in configuration order; the first whose MQTT filter
// matches the topic wins ("+" one level, "#" the rest including the parent
// level; a filter starting with a wildcard does not match a topic starting
// with "$"). A publish that matches no route is delivered to subscribers
// like on any broker (devices still receive commands) and not stored. The
// partition key is rendered from the route's template ({topic.N},
// {client_id}, {username}, {identity}, {payload.PATH}, literal text).
// {identity} binds a record to who sent it rather than to what its topic
// claims; an anonymous client has none, so its publishes to such a route
// are refused with 0x99 like any unresolved key. Will messages
// and $SYS topics are published by mochi without the publish hook, so
// they are delivered but never stored.
//
// # What the device receives
//
// mochi runs OnPublish on the client's read goroutine and builds the
// acknowledgement only after it returns. A QoS ≥ 1 publish to a sink that
// can report later (DeferredSink: the shards.Store) is queued there and
// deferred in mochi (the vendored patch, PATCHES.md "Deferred
// acknowledgements"): the read goroutine goes back to reading, and the
// shard log's completion goroutine answers the group's publishes after
// its fsync, in each client's arrival order. With any other sink the hook
// blocks until the sink returns. Either way PUBACK/PUBREC means "on disk".
// The outcome decides the rest (mochi server.go, processPublish and
// finishPublish):
//
//	outcome              QoS  MQTT 5 client                 MQTT 3.1.1 client
//	stored               0    nothing (QoS 0), forwarded    nothing, forwarded
//	stored               1    PUBACK 0x00, forwarded        PUBACK, forwarded
//	stored               2    PUBREC 0x00, forwarded        PUBREC, forwarded
//	refused              0    dropped, counted, no          dropped, counted, no
//	                          disconnect, not forwarded     disconnect, not forwarded
//	refused              1    PUBACK with reason code,      connection closed, no
//	                          not forwarded                 PUBACK, not forwarded;
//	                                                        the client resends after
//	                                                        reconnecting
//	refused              2    PUBREC with reason code,      as for QoS 1
//	                          not forwarded
//	no route             any  acknowledged and forwarded,   the same
//	                          not stored
//
// Reason codes: 0x97 quota exceeded (shards.ErrThrottled: rate limit
// reached or the backpressure wait expired; shards.ErrFull: max_bytes with
// on_full reject, or the disk is full), 0x95 packet too large
// (shards.ErrTooLarge), 0x99 payload format invalid (the key template
// cannot be rendered, e.g. a missing {payload.PATH} field, or the key is
// not a valid Kinesis partition key), 0x80 unspecified error (anything
// else: shard unavailable after an I/O error, unknown stream, store or
// broker closing, client gone).
//
// Nothing refused is acknowledged and nothing refused is forwarded. The
// cases that need care in mochi v2.7.9:
//   - Any error other than packets.ErrRejectPacket or a packets.Code is
//     treated as success (acknowledged and forwarded), and so is a Code for
//     an MQTT 3.1.1 client or for QoS 0. Refusals therefore return
//     ErrRejectPacket except for MQTT 5 QoS 1, which returns the Code.
//   - MQTT 3.1.1 has no negative acknowledgement and no server DISCONNECT,
//     so the hook closes the connection (Client.Stop) and returns
//     ErrRejectPacket. The unacknowledged publish stays in the client's
//     store and is resent after reconnecting. mochi ends such a client
//     without an error, so its will message is not published.
//   - mochi answers a Code for a QoS 2 publish with a PUBACK instead of a
//     PUBREC (mochi issue #510). The hook writes the PUBREC with the
//     reason code itself and returns ErrRejectPacket, so MQTT 5 QoS 2
//     clients get a proper PUBREC ≥ 0x80, which ends the QoS 2 exchange.
//     A deferred publish gets that PUBREC from mochi's
//     DeferredPublish.Complete, in order with the client's other answers.
//
// Delivery is at least once: a QoS 1 publish resent with DUP (after a
// lost PUBACK or a refusal disconnect) is stored again. QoS 2 duplicates
// within one session are answered by mochi from its in-flight table
// without calling the hook, so they are stored once.
//
// Deferred, a client may have up to receive_maximum QoS ≥ 1 publishes
// waiting on the disk; past that its read loop waits for an answer (an
// MQTT 3.1.1 client is not disconnected for pipelining). Throughput still
// comes mostly from many connections sharing one group commit. Without a
// DeferredSink one publish per connection waits at a time (the read loop
// is blocked), which also stalls that client's PINGREQ handling. The
// context handed to the sink ends when the connection is closed (takeover,
// broker shutdown), so a write waiting for rate capacity stops waiting once
// its acknowledgement can no longer be delivered.
//
// # What one client can cost
//
// A deadline of connect_timeout applies from accept until CONNECT has been
// read; then mochi's keepalive deadline (1.5 × keepalive) replaces it.
// Packets larger than the maximum packet size (max_record_size + 64 KiB by
// default) end the connection before their body is read, and the size is
// advertised in CONNACK to MQTT 5 clients. The outbound queue holds
// max_pending_writes packets, session expiry is capped by
// session_expiry_max, the topic-alias table at 16 entries and the read
// buffer is 1 KiB. The abuse limits (limits.go, configs/weir.example.yaml)
// bound the rest: max_connections (CONNACK 0x97, 3.1.1: 3),
// max_subscriptions per client and max_subscriptions_total (SUBACK 0x97,
// 3.1.1: 0x80), retained
// messages in count and bytes (mqtt.retained; a publish over them is
// refused like a full stream, with 0x97, before it is stored), QoS 2
// publishes parked awaiting PUBREL (max_qos2_pending, 0x97), and how long a
// disconnected session is kept (session_expiry_max, for MQTT 5 and 3.1.1
// persistent sessions alike). Each refusal is counted in Stats (Refused,
// Limits) and logged, at most once a second per kind. A new subscriber
// receives every matching retained message: the patched mochi sends them
// from a goroutine of the client's that waits for room in its outbound
// queue and in-flight window instead of dropping what does not fit.
//
// # Protocol strictness
//
// The patched mochi refuses, as MQTT 5 says: a PUBLISH with an empty topic
// and a topic alias never set up (DISCONNECT 0x82; an alias above 16:
// 0x94), a property repeated in any packet but User Property (0x82, as
// CONNACK or DISCONNECT), Receive Maximum or Maximum Packet Size 0 in
// CONNECT (CONNACK 0x82). A publish to $SYS/... is answered, never stored
// or forwarded: PUBACK/PUBREC 0x87 Not authorized for MQTT 5 (as an ACL
// denial: the topics exist but are the broker's), the connection closed for
// a 3.1.1 QoS 1/2 publish, QoS 0 dropped; all counted. A client that is not
// MQTT 5 only ever gets a 3.1.1 CONNACK return code (1 unacceptable
// protocol version, 2 identifier rejected, 3 server unavailable, 4 bad user
// name or password, 5 not authorized), or none for a malformed CONNECT.
// BenchmarkIdleClientMemory measures what an idle device costs: about
// 8 KiB, of which 4 KiB are the stack of the one goroutine mochi keeps per
// client, its read loop (weir-bench's idle mode, which forces no GC, sees
// 9.5 KiB of resident memory per device). Upstream mochi v2.7.9 cost 20
// KiB of stack per client: it handled CONNECT on the goroutine that then
// reads the client, which grew that stack to 16 KiB, and parked its read
// loop below ~5.5 KB of frames, so the runtime could never shrink it; and
// it kept a write loop parked per client. The mochi in
// third_party/mochi-mqtt-server is patched (see its PATCHES.md) to handle
// CONNECT on a short-lived goroutine, to park the read loop in a small
// frame, and to run a writer only while a client has packets queued. A
// QoS 1 publish mostly runs within the read loop's 4 KiB (the path down
// to the log's AppendDeferred is about 3.1 KB deep, some 100 bytes short
// of what 4 KiB leaves above the guard) and at times grows it to 8 KiB,
// which the next GC halves back. It grew to 32 KiB before mochi handed
// the packet down by pointer (mqtt.PublishRefHook, which both publish
// hooks implement; PATCHES.md "The publish path by pointer");
// TestPublishStack holds 8 KiB. A PINGREQ is answered within the 4 KiB
// (TestPingStack; it grew the stack to 16 KiB before).
//
// # Authentication and access control
//
// Listeners: mqtt.listen (plain TCP) and mqtt.listeners, each plain or TLS
// (1.2 or later). A TLS listener's certificate, key and client CA are read
// through an atomic pointer at each handshake, so Broker.ReloadTLS puts
// new files in force without a restart; a file that does not load leaves
// the old ones in force and is named in the error.
//
// Identity is decided once, at CONNECT, and kept on the connection
// (identity.go): the ACL, {identity} and the logs all use it.
//  1. A client that presents a certificate the listener's client_ca_file
//     verified is that certificate's identity_from field (CN, first DNS
//     SAN or first URI SAN); an empty field is refused (0x87 / 5). No
//     password is needed or checked.
//  2. Else, with a password file (Options.Passwords), the user name once
//     its password is verified (wrong or unknown: 0x86 / 4).
//  3. Else anonymous (""): allowed with allow_anonymous, or, with no
//     password file, on a loopback listener only (Mosquitto 2.0's
//     local-only mode); otherwise refused (0x87 / 5). New refuses a
//     configuration where a non-loopback listener has neither a password
//     file, required client certificates nor allow_anonymous
//     (CheckAnonymous).
//
// Then: client_id_must_match (username or identity) refuses another client
// id (0x85 / 2); a client id whose session belongs to another identity is
// refused (0x85 / 2), so neither an anonymous client nor another device
// can take a session over; a will topic the ACL does not let the client
// publish to is refused (0x87 / 5). MQTT 3.1.1 clients get 3.1.1 return
// codes: the hook writes the CONNACK itself in OnConnect, because mochi
// would map a refusal from OnConnectAuthenticate to code 5 where 4 is due.
//
// Failed logins are logged (never the password), counted by reason
// (Stats.LoginFailures) and slowed per remote address (an IPv6 client by
// its /64): five failures are free, then attempts are spaced a second
// apart before the password is checked, and one that would wait more than
// 5 s is refused unchecked, so a guessing loop cannot keep the CPU busy
// hashing passwords (loginlimit.go).
//
// The ACL (Options.ACL), when set, applies on every listener:
//
//	event                MQTT 5                       MQTT 3.1.1
//	publish denied       PUBACK/PUBREC 0x87; QoS 0    QoS 1/2: connection closed,
//	                     dropped and counted          no ack; QoS 0 dropped
//	subscribe denied     SUBACK 0x87 for the filter   SUBACK 0x80
//	delivery denied      not sent to that subscriber (retained messages too)
//
// A denied publish is refused by the auth hook's OnPublish before the
// ingest hook: never stored, retained or forwarded. mochi asks OnACLCheck
// (topic, false) both for SUBSCRIBE filters and for each delivery; the
// hook tells them apart by wildcards and by the filters of the SUBSCRIBE
// in progress (an exact filter then needs both CanSubscribe and
// CanReceive).
//
// Each accepted CONNECT is logged at info ("mqtt login") and so is its end
// ("mqtt disconnect", with the reason and how long it lasted), with the
// same keys: client_id, remote, listener, protocol, identity, tls. A fleet
// reconnecting at once would flood the log, so these lines share a rate
// limit (connlog.go) and what it leaves out is counted in a summary line.
// mochi's own log goes through the same zerolog logger (logging.go).
// Metrics (metrics.go) are read from Stats at scrape time; only the
// publish→PUBACK histogram is observed on the publish path.
package ingest
