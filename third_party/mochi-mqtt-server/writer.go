package mqtt

// weir: not upstream. Upstream starts a WriteLoop goroutine per client
// that lives as long as the connection, parked on the outbound queue.
// A device that only publishes never has anything queued (acks are
// written directly), so that goroutine is 2 KiB of stack and a goroutine
// descriptor per device for nothing. Instead, the first packet queued
// starts a writer, which drains the queue and exits when it is empty.

// kickWriter makes sure a writer is draining cl's outbound queue. Called
// after each packet is queued.
func (cl *Client) kickWriter() {
	if cl.State.writing.CompareAndSwap(false, true) {
		go cl.drainOutbound()
	}
}

// drainOutbound writes queued packets in order until the queue is empty,
// or the client is closed.
func (cl *Client) drainOutbound() {
	for {
		select {
		case pk := <-cl.State.outbound:
			cl.writeQueued(pk)
			continue
		case <-cl.State.open.Done():
			return // as WriteLoop: what is left is resent from Inflight on reconnect
		default:
		}
		if cl.releaseWriter() {
			return
		}
	}
}

// releaseWriter is the writer's exit, once it found the queue empty: it
// reports whether the writer may stop, or must go on because a packet
// arrived meanwhile. A packet queued while the writer is deciding is not
// stranded: its sender queued it before trying to claim the writer; if
// that claim failed, writing was still true, so it happened before the
// Store below, and the length check after the Store sees the packet.
func (cl *Client) releaseWriter() bool {
	cl.State.writing.Store(false)
	return len(cl.State.outbound) == 0 || !cl.State.writing.CompareAndSwap(false, true)
}
