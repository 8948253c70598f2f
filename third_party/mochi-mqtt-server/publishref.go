// weir: this file is weir's addition to mochi (see PATCHES.md, "The
// publish path by pointer"). Upstream passes the 800-byte packets.Packet
// by value from the read loop down to every OnPublish hook and back, and
// each frame on the way reserves room for one to four copies: a client's
// first QoS 1 publish grew its read goroutine from 4 to 32 KiB. The read
// loop's packet now goes down by pointer, and a hook may take it so.

package mqtt

import (
	"errors"
	"sync"

	"github.com/mochi-mqtt/server/v2/packets"
)

// PublishRefHook is implemented by a hook that takes a publish by pointer.
// For such a hook, Hooks.OnPublishRef calls OnPublishRef instead of
// OnPublish. The hook may change *pk in place, as OnPublish would return
// a changed packet, but must leave it unchanged when it returns an error
// (upstream acknowledges a refused publish from the packet as it arrived),
// and must not keep pk after it returns: the packet is reused for the
// client's next one. Its errors mean what OnPublish's do.
type PublishRefHook interface {
	OnPublishRef(cl *Client, pk *packets.Packet) error
}

// packetPool holds the read loops' packets: one is in use per client only
// while a packet is processed, so an idle client holds none.
var packetPool = sync.Pool{New: func() any { return new(packets.Packet) }}

func getPacket() *packets.Packet { return packetPool.Get().(*packets.Packet) }

// putPacket clears pk, so the pool keeps no payload or topic alive, and
// returns it.
func putPacket(pk *packets.Packet) {
	*pk = packets.Packet{}
	packetPool.Put(pk)
}

// OnPublishRef is Hooks.OnPublish for a packet held by pointer: the hooks
// change *pk in place. A hook that implements PublishRefHook gets pk
// itself; any other gets a copy and its result is copied back. As
// upstream's OnPublish returns the packet it was given when a hook fails,
// the packet is put back as it was before the first by-value hook ran.
func (h *Hooks) OnPublishRef(cl *Client, pk *packets.Packet) error {
	var orig *packets.Packet
	for _, hook := range h.GetAll() {
		if !hook.Provides(OnPublish) {
			continue
		}
		var err error
		if rh, ok := hook.(PublishRefHook); ok {
			err = rh.OnPublishRef(cl, pk)
		} else {
			if orig == nil {
				orig = new(packets.Packet)
				*orig = *pk
			}
			err = onPublishValue(hook, cl, pk)
		}
		if err == nil {
			continue
		}
		if err == ErrPublishDeferred { // weir: the hook took the publish over (deferred.go): not an error, nothing to log
			return err
		}
		h.publishFailed(hook, pk, err)
		if orig != nil {
			*pk = *orig
		}
		return err
	}
	return nil
}

// onPublishValue runs a by-value OnPublish hook on *pk. It is apart so
// that the copies it needs (1.6 KB) are on the stack only while such a
// hook runs.
//
//go:noinline
func onPublishValue(hook Hook, cl *Client, pk *packets.Packet) error {
	npk, err := hook.OnPublish(cl, *pk)
	if err == nil || err == ErrPublishDeferred {
		*pk = npk
	}
	return err
}

// publishFailed logs an OnPublish hook's error as upstream's dispatcher
// did; apart, for the same reason as onPublishValue.
//
//go:noinline
func (h *Hooks) publishFailed(hook Hook, pk *packets.Packet, err error) {
	if errors.Is(err, packets.ErrRejectPacket) {
		h.Log.Debug("publish packet rejected",
			"error", err,
			"hook", hook.ID(),
			"packet", *pk)
		return
	} else if errors.Is(err, packets.CodeSuccessIgnore) {
		return
	}
	h.Log.Error("publish packet error",
		"error", err,
		"hook", hook.ID(),
		"packet", *pk)
}
