package brokerlink

import (
	"context"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/broker"
)

// claims is a Claim hook whose answers the test sets.
type claims struct {
	mu  sync.Mutex
	set map[string]bool
}

func (c *claims) claim(_ context.Context, wh string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set[wh]
}

func (c *claims) put(wh string, on bool) {
	c.mu.Lock()
	c.set[wh] = on
	c.mu.Unlock()
}

// TestLinkReadsOnlyClaimedWarehouses: with Claim, the link hands over the
// messages of the warehouses it claims and no others; a warehouse's
// messages wait in the broker until some link claims it, and a link that
// gives a warehouse up stops getting its messages.
func TestLinkReadsOnlyClaimedWarehouses(t *testing.T) {
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Warehouses: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cl := &claims{set: map[string]bool{"W1": true}}
	link := NewNATS(NATSConfig{Server: b.NATS(), Claim: cl.claim, ClaimInterval: 50 * time.Millisecond,
		MQTT: NewMQTT(MQTTConfig{Broker: "tcp://" + b.Addr(), ClientID: "shelfsync-server-test"})})
	got := make(chan string, 16)
	link.Start(func(m Message) {
		got <- m.Topic + " " + string(m.Payload)
		m.Done()
	})
	t.Cleanup(link.Close)
	require.Eventually(t, link.Connected, time.Minute, 20*time.Millisecond)

	topics := protocol.NewTopics("")
	publish := func(wh, payload string) {
		t.Helper()
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(protocol.ClientID(wh, "g-1")).
			SetCleanSession(true).SetAutoReconnect(false))
		tok := c.Connect()
		require.True(t, tok.WaitTimeout(30*time.Second))
		require.NoError(t, tok.Error())
		defer c.Disconnect(50)
		tok = c.Publish(topics.Up(wh, "g-1"), 1, false, []byte(payload))
		require.True(t, tok.WaitTimeout(30*time.Second))
		require.NoError(t, tok.Error())
	}
	next := func() string {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(30 * time.Second):
			t.Fatal("no message")
			return ""
		}
	}
	none := func() {
		t.Helper()
		select {
		case m := <-got:
			t.Fatalf("got %q from a warehouse not claimed", m)
		case <-time.After(500 * time.Millisecond):
		}
	}

	publish("W1", "a")
	publish("W2", "b")
	require.Equal(t, topics.Up("W1", "g-1")+" a", next())
	none()
	require.ElementsMatch(t, []string{"W1"}, link.Reading())

	cl.put("W2", true) // W2's message waited for a claim
	require.Equal(t, topics.Up("W2", "g-1")+" b", next())

	cl.put("W1", false)
	require.Eventually(t, func() bool { return len(link.Reading()) == 1 }, 30*time.Second, 20*time.Millisecond)
	publish("W1", "c")
	none()
	cl.put("W1", true)
	require.Equal(t, topics.Up("W1", "g-1")+" c", next())
}
