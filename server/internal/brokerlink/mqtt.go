package brokerlink

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfsync/shelfsync/protocol"
)

// MQTTConfig configures an MQTT link.
type MQTTConfig struct {
	Broker   string // tcp://host:port or ssl://host:port
	ClientID string
	Username string
	Password string
	TLS      *tls.Config
	Root     string // topic root (default protocol.DefaultRoot)
	// ShareGroup, when set, subscribes through the shared subscription
	// $share/{ShareGroup}/… (brokers that keep a publisher on one member).
	ShareGroup string
	Logger     *slog.Logger
}

// MQTT is a link over MQTT 3.1.1 (paho).
type MQTT struct {
	cfg    MQTTConfig
	topics protocol.Topics
	log    *slog.Logger

	mu     sync.Mutex
	client paho.Client
	// conn counts connections; subscribed is set once the subscription of
	// connection number conn is acknowledged (see Connected).
	conn       atomic.Uint64
	subscribed atomic.Bool
}

var _ Link = (*MQTT)(nil)

// NewMQTT builds an MQTT link; Start connects it.
func NewMQTT(cfg MQTTConfig) *MQTT {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &MQTT{cfg: cfg, topics: protocol.NewTopics(cfg.Root), log: cfg.Logger}
}

// Start implements Link.
func (l *MQTT) Start(h Handler) {
	opts := paho.NewClientOptions().
		AddBroker(l.cfg.Broker).
		SetClientID(l.cfg.ClientID).
		SetUsername(l.cfg.Username).
		SetPassword(l.cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(retryInterval).
		SetMaxReconnectInterval(maxRetryInterval).
		SetKeepAlive(keepAlive).
		SetOrderMatters(true). // h never blocks; in-order routing avoids needless gaps (resends) under load
		SetOnConnectHandler(func(c paho.Client) { l.onConnect(c, h) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			l.conn.Add(1)
			l.subscribed.Store(false)
			l.log.Warn("broker connection lost; reconnecting", "err", err)
		})
	if l.cfg.TLS != nil {
		opts.SetTLSConfig(l.cfg.TLS)
	}
	c := paho.NewClient(opts)
	l.mu.Lock()
	l.client = c
	l.mu.Unlock()
	c.Connect()
}

func (l *MQTT) onConnect(c paho.Client, h Handler) {
	l.log.Info("connected to broker", "broker", l.cfg.Broker)
	conn := l.conn.Add(1)
	l.subscribed.Store(false)
	if h == nil {
		l.subscribed.Store(true)
		return
	}
	up, status := l.topics.AllUp(), l.topics.AllStatus()
	if g := l.cfg.ShareGroup; g != "" {
		up, status = "$share/"+g+"/"+up, "$share/"+g+"/"+status
	}
	subs := map[string]byte{up: 1, status: 1}
	go func() {
		// The session is clean: until the broker acknowledges the
		// subscription, gateways' messages reach no one and are lost (a
		// gateway resends only after its ack timeout). Connected stays
		// false until then, and a failed subscription is tried again.
		for wait := retryInterval; l.conn.Load() == conn && c.IsConnectionOpen(); wait = min(2*wait, maxRetryInterval) {
			tok := c.SubscribeMultiple(subs, func(_ paho.Client, m paho.Message) {
				h(Message{Topic: m.Topic(), Payload: m.Payload()})
			})
			if tok.WaitTimeout(PublishTimeout*2) && tok.Error() == nil {
				if l.conn.Load() == conn {
					l.subscribed.Store(true)
				}
				return
			}
			l.log.Error("subscribe failed; trying again", "err", tok.Error())
			time.Sleep(wait)
		}
	}()
}

func (l *MQTT) get() paho.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

// Publish implements Link.
func (l *MQTT) Publish(topic string, retained bool, payload []byte) error {
	c := l.get()
	if c == nil || !c.IsConnectionOpen() {
		return errors.New("not connected to the broker")
	}
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(PublishTimeout) {
		return errors.New("publish timed out")
	}
	return tok.Error()
}

// Connected implements Link: the connection is up and its subscription
// to the gateways' topics acknowledged (only then does a gateway's message
// reach the server).
func (l *MQTT) Connected() bool {
	c := l.get()
	return c != nil && c.IsConnectionOpen() && l.subscribed.Load()
}

// Close implements Link.
func (l *MQTT) Close() {
	if c := l.get(); c != nil {
		c.Disconnect(250)
	}
}
