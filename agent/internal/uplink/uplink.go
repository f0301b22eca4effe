// Package uplink replicates the agent's outbox to the server over MQTT and
// applies what the server sends down. Correctness comes from seq/ack, not
// from the broker: ops stay in the outbox until an ack covers them, are
// resent from ack+1 after a gap, a timeout or a reconnect (go-back-N with a
// bounded window), and a hello on every connect re-synchronises both sides.
package uplink

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// Config configures the uplink.
type Config struct {
	// Brokers are the MQTT broker URLs, tried in this order at every
	// (re)connect: several let a gateway fail over between server
	// replicas that each run a broker.
	Brokers      []string
	ClientID     string // default protocol.ClientID: "shelfsync-agent-{wh}-{gw}"
	Username     string
	Password     string
	Root         string
	Warehouse    string
	Gateway      string
	AgentVersion string

	MaxBatchOps   int           // default 256
	MaxBatchBytes int           // default 64 KiB (well under the 1 MiB message cap)
	Linger        time.Duration // default 5 ms: wait this long for more ops before sending
	Window        uint64        // ops in flight beyond the ack; default 8192
	// AckTimeout is the least (and the first) ack timeout; it adapts to
	// the measured ack latency (protocol.Window). Default 3 s.
	AckTimeout  time.Duration
	StatusEvery time.Duration // status republish period; default 15 s
	// ReconnectMax caps paho's doubling reconnect back-off; default 10 s.
	ReconnectMax time.Duration

	// TLS, when set, is used for ssl:// brokers; CertCN is its client
	// certificate's CN (for error messages). ACLBackoff is how long to stop
	// sending after the broker's ACL is seen refusing this gateway (aclguard.go;
	// default 5 min).
	TLS        *tls.Config
	CertCN     string
	ACLBackoff time.Duration

	Logger *slog.Logger
	// Devices reports device states for the status message.
	Devices func() []protocol.DeviceStatus
}

func (c *Config) defaults() {
	if c.MaxBatchOps <= 0 {
		c.MaxBatchOps = 256
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 64 << 10
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.Window == 0 {
		c.Window = 8192
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 3 * time.Second
	}
	if c.StatusEvery <= 0 {
		c.StatusEvery = 15 * time.Second
	}
	if c.ClientID == "" {
		c.ClientID = protocol.ClientID(c.Warehouse, c.Gateway)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// State is the uplink's health, for the status API.
type State struct {
	Connected bool   `json:"connected"`
	LastError string `json:"last_error,omitempty"`
	Epoch     string `json:"server_epoch,omitempty"`
	// Resends counts the times the uplink went back to resend from the
	// server's watermark (a gap, a rejection, or a timeout's question
	// answered with ops missing); Timeouts the times an ack took longer
	// than the adaptive timeout (each asks the server with a hello).
	Resends   uint64 `json:"resends"`
	Timeouts  uint64 `json:"ack_timeouts"`
	Batches   uint64 `json:"batches_sent"`
	DownItems uint64 `json:"down_items_received"`
	// OpsDeflate: the server announced ops-deflate on this connection, so
	// batches go out DEFLATE-compressed (protocol SPEC.md §5.1).
	OpsDeflate bool `json:"ops_deflate"`
	// Regressions counts the times the server's state was seen to go back
	// in time (another identity, or a watermark below what it had
	// acknowledged); LastRegression describes the latest (regress.go).
	Regressions    uint64          `json:"server_regressions"`
	LastRegression *RegressionInfo `json:"last_server_regression,omitempty"`
	// Lost is the seq range the server is being asked to record as
	// lost-ops (beyond this gateway's retention), while it has not.
	Lost *SeqRange `json:"lost_ops_pending,omitempty"`
	// ClockSkewMS is the server's clock minus this gateway's, in ms, as
	// measured on the latest ack or downstream batch (transit time
	// included: it reads a little high when the server is ahead).
	ClockSkewMS int64 `json:"clock_skew_ms"`
	// ClockRefused counts server clock values not merged because they ran
	// more than the maximum offset ahead (protocol SPEC.md §4).
	ClockRefused uint64 `json:"clock_refused"`
}

// Uplink is the replication client.
type Uplink struct {
	cfg    Config
	st     *store.Store
	clock  *protocol.Clock
	topics protocol.Topics
	log    *slog.Logger
	client paho.Client
	// pubMu makes "not blocked, so publish" one step against the guard
	// tripping (connection-lost handler): a publish decided just before a
	// trip would otherwise wait in paho's store after its reset and be
	// sent at the next reconnect, dropping the connection again.
	pubMu sync.Mutex

	inbox     chan protocol.Message
	connected chan struct{}
	guard     *aclGuard // aclguard.go
	// feats are the features the server announced in its latest ack on
	// this connection (SPEC.md §5.1); only the loop goroutine uses them.
	feats protocol.Features
	// lostAsked is when a hello last asked the server to record the seqs
	// beyond the retention as lost (loop goroutine only).
	lostAsked   time.Time
	lostPending bool // State.Lost is set
	// greeted is when this connection's hello was sent, until an ack
	// (its answer) or a timeout: batches wait for it (loop goroutine only).
	greeted time.Time

	mu    sync.Mutex
	state State
	// broker is the URL of the latest connection attempt (under mu).
	broker string
}

// New builds an uplink over the store; Run starts it.
func New(cfg Config, st *store.Store, clock *protocol.Clock) *Uplink {
	cfg.defaults()
	return &Uplink{
		cfg: cfg, st: st, clock: clock, topics: protocol.NewTopics(cfg.Root), log: cfg.Logger,
		inbox: make(chan protocol.Message, 256), connected: make(chan struct{}, 1),
		guard: newACLGuard(cfg.ACLBackoff),
	}
}

// State returns a snapshot of the uplink's health.
func (u *Uplink) State() State {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.state
	s.Connected = u.client != nil && u.client.IsConnectionOpen()
	return s
}

func (u *Uplink) setError(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	u.mu.Lock()
	u.state.LastError = msg
	u.mu.Unlock()
	u.log.Error(msg)
}

func (u *Uplink) status(online bool) []byte {
	p, _ := u.st.Positions()
	st := &protocol.Status{
		Header: protocol.Header{WH: u.cfg.Warehouse, GW: u.cfg.Gateway}, Online: online,
		OutboxDepth: p.LastSeq - p.Acked, LastSeq: p.LastSeq, AckedSeq: p.Acked,
		AgentVersion: u.cfg.AgentVersion, At: time.Now().UnixMilli(),
	}
	if online && u.cfg.Devices != nil {
		st.Devices = u.cfg.Devices()
	}
	if online {
		ns, _ := u.st.Notices(0)
		st.Notices = Sendable(ns, u.feats)
	}
	b, err := protocol.Encode(st)
	if err != nil {
		u.log.Error("encode status", "err", err)
	}
	return b
}

// Run connects and replicates until ctx is done.
func (u *Uplink) Run(ctx context.Context) error {
	will := u.status(false)
	mem := paho.NewMemoryStore() // wiped when the ACL guard trips (aclguard.go)
	opts := paho.NewClientOptions().SetStore(mem)
	for _, b := range u.cfg.Brokers {
		opts.AddBroker(b)
	}
	opts.SetClientID(u.cfg.ClientID).
		SetUsername(u.cfg.Username).
		SetPassword(u.cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cmp.Or(u.cfg.ReconnectMax, 10*time.Second)).
		SetKeepAlive(10*time.Second).
		SetBinaryWill(u.topics.Status(u.cfg.Warehouse, u.cfg.Gateway), will, 1, true).
		SetOnConnectHandler(u.onConnect).
		SetProtocolVersion(4). // no silent fallback to 3.1: keeps a refusal's reason
		// a dead replica's address must not hold up trying the next one
		SetConnectTimeout(10 * time.Second).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			switch n := n.(type) {
			case paho.ConnectionNotificationBroker:
				u.mu.Lock()
				u.broker = n.Broker.String()
				u.mu.Unlock()
			case paho.ConnectionNotificationFailed:
				u.onConnectFailed(n.Reason)
			case paho.ConnectionNotificationBrokerFailed:
				u.onConnectFailed(n.Reason)
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			u.log.Warn("uplink lost; ops keep committing locally and will be resent", "err", err)
			u.pubMu.Lock()
			tripped, n := u.guard.onLost()
			if tripped {
				mem.Reset() // paho would resend its unacked publishes at every reconnect
			}
			u.pubMu.Unlock()
			if tripped {
				u.setError("%s", u.aclLoopError(n))
			}
		})
	if u.cfg.TLS != nil {
		opts.SetTLSConfig(u.cfg.TLS)
	}
	u.mu.Lock()
	u.client = paho.NewClient(opts)
	u.mu.Unlock()
	u.client.Connect()
	defer func() {
		if u.client.IsConnectionOpen() {
			tok := u.client.Publish(u.topics.Status(u.cfg.Warehouse, u.cfg.Gateway), 1, true, u.status(false))
			tok.WaitTimeout(time.Second)
		}
		u.client.Disconnect(250)
	}()
	return u.loop(ctx)
}

func (u *Uplink) onConnect(c paho.Client) {
	u.mu.Lock()
	broker := u.broker
	u.mu.Unlock()
	u.log.Info("uplink connected", "broker", broker)
	u.guard.onConnect()
	down := u.topics.Down(u.cfg.Warehouse, u.cfg.Gateway)
	tok := c.Subscribe(down, 1, func(_ paho.Client, m paho.Message) {
		msg, err := protocol.Decode(m.Payload())
		if err != nil {
			u.log.Warn("undecodable message from server ignored", "err", err)
			return
		}
		select {
		case u.inbox <- msg:
		default: // acks and downstream are re-sent; dropping under overload is safe
		}
	})
	go func() {
		if st, ok := tok.(*paho.SubscribeToken); ok && tok.WaitTimeout(10*time.Second) && tok.Error() == nil && st.Result()[down] == 0x80 {
			u.setError("identity/ACL error: the broker refused the subscription to %s: it does not let %s read gateway %s/%s's topics; fix the certificate/username or the warehouse/gateway settings",
				down, u.cfg.identity(), u.cfg.Warehouse, u.cfg.Gateway)
		}
	}()
	select {
	case u.connected <- struct{}{}:
	default:
	}
}
