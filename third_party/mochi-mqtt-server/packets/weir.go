// weir: this file is weir's addition to mochi's packets package (see
// PATCHES.md): the codes of the protocol errors weir's patches detect.

package packets

var (
	// ErrProtocolViolationDuplicateProperty: MQTT 5 §2.2.2.2 makes it a
	// Protocol Error to include any property but User Property (and, in a
	// server's PUBLISH, Subscription Identifier) more than once.
	ErrProtocolViolationDuplicateProperty = Code{Code: 0x82, Reason: "protocol violation: duplicate property"}
	// ErrProtocolViolationZeroProperty: Receive Maximum (§3.1.2.11.3) and
	// Maximum Packet Size (§3.1.2.11.4) of 0 are Protocol Errors.
	ErrProtocolViolationZeroProperty = Code{Code: 0x82, Reason: "protocol violation: property must not be 0"}
	// ErrProtocolViolationUnknownTopicAlias: a PUBLISH with an empty topic
	// and a Topic Alias the sender never set up (§3.3.2.3.4: Protocol
	// Error).
	ErrProtocolViolationUnknownTopicAlias = Code{Code: 0x82, Reason: "protocol violation: empty topic and unknown topic alias"}
)

// repeatable reports whether property k may appear more than once in a
// packet of type pkt.
func repeatable(k, pkt byte) bool {
	return k == PropUser || (k == PropSubscriptionIdentifier && pkt == Publish)
}
