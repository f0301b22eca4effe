package broker

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startCluster starts n clustered brokers at once (a node waits at start
// for a quorum of the others) whose password file knows gateway gw.
func startCluster(t *testing.T, n int, gw string) []*Broker {
	t.Helper()
	return startClusterWith(t, n, gw, false)
}

// startClusterWith is startCluster, with warehouse consumers when asked.
func startClusterWith(t *testing.T, n int, gw string, warehouses bool) []*Broker {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, SetPassword(pwFile, gw, "pw-"+gw))
	pw, err := LoadPasswords(pwFile)
	require.NoError(t, err)
	routes := make([]string, n)
	for i := range routes {
		routes[i] = freeAddr(t)
	}
	type result struct {
		i   int
		b   *Broker
		err error
	}
	res := make(chan result, n)
	for i := range n {
		go func() {
			b, err := Start(Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), ServerName: fmt.Sprint("node-", i),
				Cluster: Cluster{Name: "test", Listen: routes[i], Routes: routes, StartTimeout: 2 * time.Minute}, Warehouses: warehouses,
				Auth: NewAuth(AuthConfig{Passwords: pw, InternalUser: ServerIdentity, InternalPassword: internalPW})})
			res <- result{i, b, err}
		}()
	}
	nodes := make([]*Broker, n)
	var errs []error
	for range n {
		r := <-res
		if r.err != nil {
			errs = append(errs, fmt.Errorf("node-%d: %w", r.i, r.err))
			continue
		}
		nodes[r.i] = r.b
		t.Cleanup(func() { r.b.Close() })
	}
	require.Empty(t, errs)
	return nodes
}

// TestClusterGatewayHeardOnAnotherNode: three clustered brokers; a gateway
// connected to node 0 publishes a QoS 1 message; the ingest's way of
// reading (a JetStream consumer on the MQTT message stream, in-process) on
// node 1 gets it. The MQTT streams are replicated on all three nodes.
func TestClusterGatewayHeardOnAnotherNode(t *testing.T) {
	const wh, gwID = "WH1", "gw-1"
	id := wh + "/" + gwID
	nodes := startCluster(t, 3, id)

	nc, err := nats.Connect("", nats.InProcessServer(nodes[1].NATS()), nats.UserInfo(ServerIdentity, internalPW))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := js.Stream(ctx, StreamMessages)
	require.NoError(t, err)
	require.Equal(t, 3, info.CachedInfo().Config.Replicas)
	require.Equal(t, jetstream.MemoryStorage, info.CachedInfo().Config.Storage)
	topic := protocol.NewTopics("").Up(wh, gwID)
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamMessages, jetstream.ConsumerConfig{
		Durable: "test-ingest", AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: SubjectMessages + TopicSubject(topic)})
	require.NoError(t, err)

	c, err := mqttDial(t, nodes[0], protocol.ClientID(wh, gwID), id, "pw-"+id)
	require.NoError(t, err)
	tok := c.Publish(topic, 1, false, []byte("batch-1"))
	require.True(t, tok.WaitTimeout(time.Minute), "PUBACK from node 0")
	require.NoError(t, tok.Error())

	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Minute))
	require.NoError(t, err)
	var got []string
	for m := range msgs.Messages() {
		got = append(got, string(m.Data()))
		require.NoError(t, m.Ack())
	}
	require.NoError(t, msgs.Error())
	require.Equal(t, []string{"batch-1"}, got)
}

// TestClusterOptions: bad addresses are refused with what to write.
func TestClusterOptions(t *testing.T) {
	_, err := Start(Config{Addr: "127.0.0.1:0", Cluster: Cluster{Listen: "nohost", Routes: []string{"a:1"}}})
	require.ErrorContains(t, err, "want HOST:PORT")
	_, err = Start(Config{Addr: "127.0.0.1:0", Cluster: Cluster{Listen: "127.0.0.1:6222"}})
	require.ErrorContains(t, err, "no routes")
	_, err = Start(Config{Addr: "127.0.0.1:0", Cluster: Cluster{Listen: "127.0.0.1:6222", Routes: []string{"b"}}})
	require.ErrorContains(t, err, `cluster route "nats-route://b"`)
}
