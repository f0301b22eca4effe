package uplink

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

func TestACLGuard(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newACLGuard(time.Minute)
	g.now = func() time.Time { return now }

	drop := func(afterConnect time.Duration, publish bool) bool {
		g.onConnect()
		if publish {
			g.onPublish()
		}
		now = now.Add(afterConnect)
		tripped, _ := g.onLost()
		now = now.Add(time.Second) // reconnect delay
		return tripped
	}
	require.False(t, drop(time.Second, false), "no publish: a network drop, not the ACL")
	require.False(t, drop(time.Minute, true), "a drop long after the first publish is not counted")
	require.False(t, drop(5*time.Second, true), "nor one 5 s after it (a reset, not a refusal)")
	for i := 0; i < 4; i++ {
		require.False(t, drop(time.Second, true), "quick drop %d", i+1)
	}
	require.True(t, drop(time.Second, true), "the fifth quick drop after publishing trips")
	require.True(t, g.blocked())
	now = now.Add(time.Minute)
	require.False(t, g.blocked(), "backoff over: one probe")
	require.True(t, drop(time.Second, true), "after tripping once, one more drop trips again")
	now = now.Add(2 * time.Minute)
	g.onConnect()
	g.onPublish()
	g.onAck()
	require.False(t, g.blocked())
	tripped, _ := g.onLost()
	require.False(t, tripped, "an ack proves the identity works")
	require.False(t, drop(time.Second, true), "reset after an ack: threshold again")
}

// denyBroker is a minimal MQTT 3.1.1 broker that accepts every connection
// and answers like a broker whose ACL refuses this gateway: with dropOnPublish
// it disconnects the client at its first PUBLISH (mochi), and it grants
// subscriptions with subackCode (0x80 = refused).
type denyBroker struct {
	ln            net.Listener
	dropOnPublish bool
	subackCode    byte
	connects      atomic.Int64
	publishes     atomic.Int64
	wg            sync.WaitGroup
}

func startDenyBroker(t *testing.T, dropOnPublish bool, subackCode byte) *denyBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &denyBroker{ln: ln, dropOnPublish: dropOnPublish, subackCode: subackCode}
	serveFake(t, ln, &b.wg, b.serve)
	return b
}

func (b *denyBroker) serve(c net.Conn) {
	defer c.Close()
	go func() { <-time.After(time.Minute); c.Close() }()
	for {
		cp, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		switch p := cp.(type) {
		case *packets.ConnectPacket:
			b.connects.Add(1)
			ack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
			if ack.Write(c) != nil {
				return
			}
		case *packets.SubscribePacket:
			sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			sa.MessageID = p.MessageID
			sa.ReturnCodes = []byte{b.subackCode}
			if sa.Write(c) != nil {
				return
			}
		case *packets.PublishPacket:
			b.publishes.Add(1)
			if b.dropOnPublish {
				return
			}
			if p.Qos == 1 {
				pa := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				pa.MessageID = p.MessageID
				if pa.Write(c) != nil {
					return
				}
			}
		case *packets.PingreqPacket:
			if packets.NewControlPacket(packets.Pingresp).Write(c) != nil {
				return
			}
		case *packets.DisconnectPacket:
			return
		}
	}
}

func runUplink(t *testing.T, addr string) *Uplink {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	u := New(Config{Brokers: []string{"tcp://" + addr}, Warehouse: "WH1", Gateway: "gw-1", Username: "WH1/gw-1", ACLBackoff: time.Hour, AckTimeout: time.Hour,
		// Five drops at paho's default back-off (1, 2, 4, 8, 10 s) take ~25 s;
		// the guard is judged by counting drops, not by waiting for them.
		ReconnectMax: 500 * time.Millisecond}, st, protocol.NewClock(nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = u.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return u
}

// TestUplinkStopsACLDisconnectLoop: a broker that disconnects the gateway
// at every publish must not see resends forever; the uplink reports an
// identity/ACL error and stops publishing for the backoff.
func TestUplinkStopsACLDisconnectLoop(t *testing.T) {
	b := startDenyBroker(t, true, 1)
	u := runUplink(t, b.ln.Addr().String())
	waitFor(t, 30*time.Second, "identity/ACL error", func() bool { return strings.Contains(u.State().LastError, "identity/ACL error") })
	msg := u.State().LastError
	require.Contains(t, msg, `MQTT username "WH1/gw-1"`)
	require.Contains(t, msg, "shelfsync/v1/WH1/gw-1/up")
	require.True(t, u.guard.blocked())
	// No more publishes while blocked, although paho keeps the connection up.
	n := b.publishes.Load()
	c := b.connects.Load()
	waitFor(t, 60*time.Second, "a reconnect after the trip", func() bool { return b.connects.Load() > c && u.State().Connected })
	time.Sleep(300 * time.Millisecond) // a window in which a looping uplink would publish again
	require.Equal(t, n, b.publishes.Load(), "publishes while blocked")
	// Each connection publishes its status and hello besides the batch, and
	// a loaded machine may see one more drop before the guard trips: a
	// bounded handful, not a loop.
	require.LessOrEqual(t, n, int64(24))
}

// TestUplinkReportsRefusedSubscription: a broker that refuses the
// subscription to the gateway's own down topic (SUBACK 0x80) means the
// identity is not this gateway's.
func TestUplinkReportsRefusedSubscription(t *testing.T) {
	b := startDenyBroker(t, false, 0x80)
	u := runUplink(t, b.ln.Addr().String())
	waitFor(t, 10*time.Second, "subscription error", func() bool {
		return strings.Contains(u.State().LastError, "refused the subscription to shelfsync/v1/WH1/gw-1/down")
	})
}
