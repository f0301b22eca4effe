package broker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
)

var idGen = rapid.StringMatching(`[A-Za-z0-9._-]{1,24}`)

// A warehouse consumer's name gives back its warehouse, for every ID; no
// other name is taken for one.
func TestWarehouseConsumerNameRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		wh := idGen.Filter(func(s string) bool { return protocol.ValidateID(s) == nil }).Draw(rt, "wh")
		got, ok := ConsumerWarehouse(WarehouseConsumerName(wh))
		if !ok || got != wh {
			rt.Fatalf("ConsumerWarehouse(%q) = %q, %v; want %q", WarehouseConsumerName(wh), got, ok, wh)
		}
	})
	for _, name := range []string{DefaultDurableForTest, "shelfsync-wh-", "other"} {
		_, ok := ConsumerWarehouse(name)
		require.False(t, ok, name)
	}
}

// DefaultDurableForTest is the ingest's single consumer (brokerlink's
// DefaultDurable), which is no warehouse consumer.
const DefaultDurableForTest = "shelfsync-ingest"

// Without authentication a gateway is known by its client id only: the
// warehouse it names is among the candidates, whatever '-' and '.' the IDs
// hold.
func TestClientWarehousesHoldTheGatewaysWarehouse(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		valid := idGen.Filter(func(s string) bool { return protocol.ValidateID(s) == nil })
		wh, gw := valid.Draw(rt, "wh"), valid.Draw(rt, "gw")
		require.Contains(rt, clientWarehouses(protocol.ClientID(wh, gw)), wh)
	})
	require.Empty(t, clientWarehouses("mosquitto_sub-1"))
}

// TestClusterWarehouseConsumerMadeAtConnect: with Warehouses, a gateway
// connecting to node 0 makes its warehouse's consumer before it may
// publish; the consumer, read on node 2, has the gateway's first message
// and no other warehouse's.
func TestClusterWarehouseConsumerMadeAtConnect(t *testing.T) {
	const wh, gwID = "WH.1", "gw-1"
	id := wh + "/" + gwID
	nodes := startClusterWith(t, 3, id, true)

	nc, err := nats.Connect("", nats.InProcessServer(nodes[2].NATS()), nats.UserInfo(ServerIdentity, internalPW))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	told := make(chan string, 4)
	_, err = nc.Subscribe(SubjectWarehouse, func(m *nats.Msg) { told <- string(m.Data) })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = js.Consumer(ctx, StreamMessages, WarehouseConsumerName(wh))
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "no consumer before a gateway connects")

	c, err := mqttDial(t, nodes[0], protocol.ClientID(wh, gwID), id, "pw-"+id)
	require.NoError(t, err)
	topic := protocol.NewTopics("").Up(wh, gwID)
	tok := c.Publish(topic, 1, false, []byte("hello"))
	require.True(t, tok.WaitTimeout(time.Minute), "PUBACK")
	require.NoError(t, tok.Error())
	select {
	case got := <-told:
		require.Equal(t, wh, got)
	case <-time.After(time.Minute):
		t.Fatal("the new warehouse was not told")
	}

	cons, err := js.Consumer(ctx, StreamMessages, WarehouseConsumerName(wh))
	require.NoError(t, err)
	info := cons.CachedInfo()
	require.NotNil(t, info.Cluster)
	require.Len(t, info.Cluster.Replicas, 2, "the consumer is kept on the three nodes, as its stream")
	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Minute))
	require.NoError(t, err)
	var got []string
	for m := range msgs.Messages() {
		got = append(got, m.Subject()+" "+string(m.Data()))
		require.NoError(t, m.Ack())
	}
	require.NoError(t, msgs.Error())
	require.Equal(t, []string{SubjectMessages + TopicSubject(topic) + " hello"}, got)
}

// Until the broker's streams exist, no warehouse consumer can be made, and
// a gateway is refused (it connects again).
func TestWarehouseRefusedUntilReady(t *testing.T) {
	a := NewAuth(AuthConfig{AllowAll: true})
	a.wh = newWarehouses("")
	require.ErrorIs(t, a.wh.ensure("WH1"), errStarting)
}
