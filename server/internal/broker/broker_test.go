package broker

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

const internalPW = "internal-secret"

// startTestBroker starts a broker on a free port whose password file knows
// the given gateway identities (password "pw-" + identity).
func startTestBroker(t *testing.T, gateways ...string) *Broker {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "passwd")
	for _, id := range gateways {
		require.NoError(t, SetPassword(pwFile, id, "pw-"+id))
	}
	var pw *Passwords
	if len(gateways) > 0 {
		var err error
		pw, err = LoadPasswords(pwFile)
		require.NoError(t, err)
	}
	b, err := Start(Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir(),
		Auth: NewAuth(AuthConfig{Passwords: pw, InternalUser: ServerIdentity, InternalPassword: internalPW})})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func mqttDial(t *testing.T, b *Broker, clientID, user, pw string) (paho.Client, error) {
	t.Helper()
	return mqttDialFrom(t, b, clientID, user, pw, "")
}

// mqttDialFrom is mqttDial from a local IP address ("" any).
func mqttDialFrom(t *testing.T, b *Broker, clientID, user, pw, from string) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(clientID).SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetUsername(user).SetPassword(pw)
	if from != "" {
		opts.SetDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second})
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// observer is an in-process NATS connection with every right that records
// the subjects published on the broker.
type observer struct {
	mu   sync.Mutex
	seen map[string]int
}

func observe(t *testing.T, b *Broker) *observer {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(b.NATS()), nats.UserInfo(ServerIdentity, internalPW))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	o := &observer{seen: map[string]int{}}
	_, err = nc.Subscribe(">", func(m *nats.Msg) {
		o.mu.Lock()
		o.seen[m.Subject]++
		o.mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return o
}

func (o *observer) count(subject string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[subject]
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestACLOnBroker runs every ACL case against the real broker: a client
// with the case's identity publishes (then publishes a marker it may send:
// the broker keeps one client's order, so once the marker arrived a denied
// publish had its chance) or subscribes (the SUBACK grants or refuses).
func TestACLOnBroker(t *testing.T) {
	b := startTestBroker(t, "WH1/gw-01", "WH.1/gw.01")
	obs := observe(t, b)
	n := 0
	for _, tc := range aclCases {
		name := fmt.Sprintf("%s %s write=%v", tc.id, tc.topic, tc.write)
		user, pw, cid := tc.id, "pw-"+tc.id, "acl-test"
		switch {
		case tc.role == RoleServer:
			pw = internalPW
		case tc.role == RoleGateway && strings.HasPrefix(tc.id, "gw:"):
			continue // a certificate CN form: no password entry can carry ':' (TestACL checks it)
		case tc.role == RoleGateway:
			wh, gw, _ := splitIdentity(tc.id)
			cid = protocol.ClientID(wh, gw)
		}
		c, err := mqttDial(t, b, cid, user, pw)
		if tc.role == RoleNone {
			require.Error(t, err, name)
			n++
			continue
		}
		require.NoError(t, err, name)
		if tc.write {
			marker := "shelfsync/v1/WH1/gw-01/status"
			if tc.role == RoleGateway {
				wh, gw, _ := splitIdentity(tc.id)
				marker = "shelfsync/v1/" + wh + "/" + gw + "/status"
			}
			before, mBefore := obs.count(TopicSubject(tc.topic)), obs.count(TopicSubject(marker))
			require.True(t, c.Publish(tc.topic, 1, false, "x").WaitTimeout(5*time.Second), name)
			require.True(t, c.Publish(marker, 1, false, "m").WaitTimeout(5*time.Second), name)
			if tc.topic == marker { // the case's publish and the marker both arrive there
				require.True(t, tc.ok, name)
				waitFor(t, 10*time.Second, name, func() bool { return obs.count(TopicSubject(marker)) >= mBefore+2 })
			} else {
				waitFor(t, 10*time.Second, "marker of "+name, func() bool { return obs.count(TopicSubject(marker)) > mBefore })
				require.Equal(t, tc.ok, obs.count(TopicSubject(tc.topic)) > before, name)
			}
		} else {
			tok := c.Subscribe(tc.topic, 1, func(paho.Client, paho.Message) {})
			require.True(t, tok.WaitTimeout(5*time.Second), name)
			res := tok.(*paho.SubscribeToken).Result() // keyed without a "$share/NAME/" prefix
			require.Len(t, res, 1, name)
			granted := true
			for _, q := range res {
				granted = q != 0x80
			}
			require.Equal(t, tc.ok, granted, name)
		}
		c.Disconnect(50)
		n++
	}
	require.GreaterOrEqual(t, n, 26, "cases run against the broker")
}

// TestGatewayDeliveryWithDots: a gateway whose IDs hold '.' gets its down
// messages at QoS 1 and its up messages reach the server's wildcard
// subscription with the topic unchanged.
func TestGatewayDeliveryWithDots(t *testing.T) {
	b := startTestBroker(t, "WH.1/gw.01")
	srv, err := mqttDial(t, b, "shelfsync-server-test", ServerIdentity, internalPW)
	require.NoError(t, err)
	ups := make(chan string, 4)
	tok := srv.Subscribe("shelfsync/v1/+/+/up", 1, func(_ paho.Client, m paho.Message) { ups <- m.Topic() })
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())

	gw, err := mqttDial(t, b, protocol.ClientID("WH.1", "gw.01"), "WH.1/gw.01", "pw-WH.1/gw.01")
	require.NoError(t, err)
	downs := make(chan string, 4)
	tok = gw.Subscribe("shelfsync/v1/WH.1/gw.01/down", 1, func(_ paho.Client, m paho.Message) { downs <- string(m.Payload()) })
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.Equal(t, byte(1), tok.(*paho.SubscribeToken).Result()["shelfsync/v1/WH.1/gw.01/down"])

	require.True(t, gw.Publish("shelfsync/v1/WH.1/gw.01/up", 1, false, "ops").WaitTimeout(5*time.Second))
	select {
	case topic := <-ups:
		require.Equal(t, "shelfsync/v1/WH.1/gw.01/up", topic)
	case <-time.After(10 * time.Second):
		t.Fatal("the up message did not reach the server")
	}
	require.True(t, srv.Publish("shelfsync/v1/WH.1/gw.01/down", 1, false, "ack").WaitTimeout(5*time.Second))
	select {
	case p := <-downs:
		require.Equal(t, "ack", p)
	case <-time.After(10 * time.Second):
		t.Fatal("the down message did not reach the gateway")
	}
}

// TestGatewayClientIDEnforced: a gateway may not connect under another
// client id (it would take over that client's session), which also checks
// that the client id is still readable from the pinned nats-server.
func TestGatewayClientIDEnforced(t *testing.T) {
	b := startTestBroker(t, "WH1/gw-01", "WH1/gw-02")
	_, err := mqttDial(t, b, protocol.ClientID("WH1", "gw-02"), "WH1/gw-01", "pw-WH1/gw-01")
	require.Error(t, err, "gw-01 under gw-02's client id")
	_, err = mqttDial(t, b, "anything", "WH1/gw-01", "pw-WH1/gw-01")
	require.Error(t, err)
	_, err = mqttDial(t, b, protocol.ClientID("WH1", "gw-01"), "WH1/gw-01", "pw-WH1/gw-01")
	require.NoError(t, err)
	_, err = mqttDial(t, b, "shelfsync-agent-WH1-gw-02", "WH1/gw-02", "pw-WH1/gw-02")
	require.NoError(t, err)
	require.Equal(t, "shelfsync-agent-WH:1-gw:01", protocol.ClientID("WH.1", "gw.01"))
}

func TestTopicSubject(t *testing.T) {
	for topic, want := range map[string]string{
		"shelfsync/v1/WH1/gw-01/up":    "shelfsync.v1.WH1.gw-01.up",
		"shelfsync/v1/WH.1/gw.01/down": "shelfsync.v1.WH//1.gw//01.down",
		"shelfsync/v1/+/+/up":          "shelfsync.v1.*.*.up",
		"shelfsync/#":                  "shelfsync.>",
		"/a//b/":                       "/.a./.b./",
	} {
		require.Equal(t, want, TopicSubject(topic), topic)
	}
}
