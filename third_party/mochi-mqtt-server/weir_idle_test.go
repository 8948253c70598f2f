package mqtt

import (
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"
)

// TestIdleHousekeepingAllocatesNothing: with every client connected and
// nothing in flight, the once-a-second expiry passes make no garbage
// (they copied the client map twice a second, idle.go), and they still
// expire what they should.
func TestIdleHousekeepingAllocatesNothing(t *testing.T) {
	s := New(nil)
	require.NotNil(t, s)
	for i := 0; i < 200; i++ {
		cl, _, _ := newTestClient()
		cl.ID = fmt.Sprintf("idle-%d", i)
		s.Clients.Add(cl)
	}
	now := time.Now().Unix()
	allocs := testing.AllocsPerRun(20, func() {
		s.clearExpiredClients(now)
		s.clearExpiredInflights(now)
	})
	require.Zero(t, allocs, "allocations per pass over 200 idle clients")

	// A client with an expired message in flight and a session long
	// disconnected are still found among the idle ones.
	busy, _ := s.Clients.Get("idle-7")
	busy.ops.info = s.Info
	busy.State.Inflight.Set(packets.Packet{PacketID: 1, Expiry: now - 1, ProtocolVersion: 5})
	gone, _ := s.Clients.Get("idle-9")
	gone.State.disconnected = now - 10
	gone.State.cancelOpen()
	s.Options.Capabilities.MaximumSessionExpiryInterval = 5
	s.clearExpiredInflights(now)
	s.clearExpiredClients(now)
	require.Zero(t, busy.State.Inflight.Len(), "expired in-flight message kept")
	_, ok := s.Clients.Get("idle-9")
	require.False(t, ok, "expired session kept")
	require.Equal(t, 199, s.Clients.Len())
}
