package broker

import (
	"crypto/subtle"
	"crypto/tls"
	"log/slog"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
)

// Identity convention (deploy/README.md, "Identity and ACL"): a gateway is
// "{wh}/{gw}" — the CN of its client certificate, or its username in the
// password file; the central server is "server". The embedded broker
// enforces the same topic ACL as deploy/mosquitto/shelfsync.acl:
//
//	gateway {wh}/{gw}  publish {root}/{wh}/{gw}/up, {root}/{wh}/{gw}/status (also as last will)
//	                   subscribe/receive {root}/{wh}/{gw}/down
//	server             publish {root}/+/+/down, {root}/+/alerts,
//	                           {root}/channels/+/availability, {root}/+/+/status
//	                   subscribe/receive {root}/+/+/up, {root}/+/+/status (also $share/NAME/...)
//	anyone else        refused at connect
//
// A publish the ACL denies disconnects an MQTT 3.1.1 client (mochi's
// behaviour); a last will on a topic the identity may not publish refuses
// the connection: mochi would send the will without an ACL check (Mosquitto
// 2.0.11 accepts such a connection and drops the will when it fires).

// ServerIdentity is the MQTT identity of the central server.
const ServerIdentity = "server"

// Role is what an authenticated identity may do.
type Role int

// Roles.
const (
	RoleNone Role = iota
	RoleGateway
	RoleServer
)

// AuthMetrics count the hook's decisions.
type AuthMetrics struct {
	Accepted  *prometheus.CounterVec // by method: certificate, password, internal
	Refused   *prometheus.CounterVec // connections refused, by reason
	ACLDenied *prometheus.CounterVec // by action (publish, subscribe, receive) and role
	// PublishDropped counts gateway publishes over a limit, by reason (size, rate).
	PublishDropped *prometheus.CounterVec
}

// NewAuthMetrics creates the instruments and registers them with reg (when not nil).
func NewAuthMetrics(reg prometheus.Registerer) *AuthMetrics {
	m := &AuthMetrics{
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_broker_connect_accepted_total",
			Help: "Embedded broker connections authenticated, by method (certificate, password, internal)."}, []string{"method"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_broker_connect_refused_total",
			Help: "Embedded broker connections refused, by reason (no_credentials, bad_password, bad_identity, username_mismatch, will_denied)."}, []string{"reason"}),
		ACLDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_broker_acl_denied_total",
			Help: "Topic ACL denials by action (publish, subscribe, receive) and role (gateway, server)."}, []string{"action", "role"}),
		PublishDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_broker_publish_dropped_total",
			Help: "Gateway publishes acknowledged but not forwarded by the embedded broker, by reason (size, rate, flood = the client was disconnected)."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.Accepted, m.Refused, m.ACLDenied, m.PublishDropped)
	}
	return m
}

// AuthConfig configures the AuthHook.
type AuthConfig struct {
	// Root is the topic root (default protocol.DefaultRoot).
	Root string
	// Passwords, when set, authenticates clients without a client
	// certificate by username and password.
	Passwords *Passwords
	// InternalUser/InternalPassword, when set, is an extra in-memory
	// credential with the server role: the server's own ingest uses it to
	// reach its embedded broker.
	InternalUser     string
	InternalPassword string
	// MaxPublishBytes, PublishRate (messages/s) and PublishBurst limit each
	// gateway's publishes at the broker (ratelimit.go); zero: no limit.
	MaxPublishBytes int
	PublishRate     float64
	PublishBurst    int
	Logger          *slog.Logger
	Metrics         *AuthMetrics
}

// AuthHook authenticates clients (client certificate CN, or username and
// password) and enforces the topic ACL. Mochi ORs auth hooks: it must be the
// only one (never add auth.AllowHook beside it).
type AuthHook struct {
	mqtt.HookBase
	cfg    AuthConfig
	topics protocol.Topics
	log    *slog.Logger
	m      *AuthMetrics
	lim    *publishLimiter // nil: no limits
}

var _ mqtt.Hook = (*AuthHook)(nil)

// NewAuthHook builds the hook.
func NewAuthHook(cfg AuthConfig) *AuthHook {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewAuthMetrics(nil)
	}
	h := &AuthHook{cfg: cfg, topics: protocol.NewTopics(cfg.Root), log: cfg.Logger, m: cfg.Metrics}
	if cfg.MaxPublishBytes > 0 || cfg.PublishRate > 0 {
		h.lim = newPublishLimiter(cfg.PublishRate, cfg.PublishBurst, cfg.MaxPublishBytes)
	}
	return h
}

// ID implements mqtt.Hook.
func (h *AuthHook) ID() string { return "shelfsync-auth" }

// Provides implements mqtt.Hook.
func (h *AuthHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnPublish
}

// PeerCN returns the CN of the verified client certificate of conn, or ""
// when conn is not TLS or presented no certificate.
func PeerCN(conn any) string {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return ""
	}
	st := tc.ConnectionState()
	// With ClientAuth VerifyClientCertIfGiven or stricter, a certificate in
	// PeerCertificates has been verified against the client CA bundle.
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].Subject.CommonName
}

// OnConnectAuthenticate establishes the client's identity and records it
// as the client's username (like Mosquitto's use_identity_as_username);
// gateways also get their identity as client id, so no gateway can take
// over another client's session by reusing its client id.
func (h *AuthHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	id, method, reason := h.authenticate(cl, pk)
	log := h.log.With("remote", cl.Net.Remote, "client", pk.Connect.ClientIdentifier)
	if reason != "" {
		h.m.Refused.WithLabelValues(reason).Inc()
		log.Warn("MQTT connection refused", "reason", reason, "identity", id, "username", string(pk.Connect.Username))
		return false
	}
	role := h.roleOf(id)
	if role == RoleNone {
		h.m.Refused.WithLabelValues("bad_identity").Inc()
		log.Warn("MQTT connection refused: identity is neither \"server\" nor {warehouse}/{gateway}", "identity", id)
		return false
	}
	if pk.Connect.WillFlag && !h.allowed(role, id, pk.Connect.WillTopic, true) {
		h.m.Refused.WithLabelValues("will_denied").Inc()
		log.Warn("MQTT connection refused: last will on a topic this identity may not publish", "identity", id, "topic", pk.Connect.WillTopic)
		return false
	}
	if role == RoleGateway {
		wh, gw, _ := splitIdentity(id)
		id = wh + "/" + gw // normalise a legacy "gw:" CN
		cl.ID = id
	}
	cl.Properties.Username = []byte(id)
	h.m.Accepted.WithLabelValues(method).Inc()
	log.Debug("MQTT client authenticated", "identity", id, "method", method)
	return true
}

func (h *AuthHook) authenticate(cl *mqtt.Client, pk packets.Packet) (id, method, reason string) {
	user := string(pk.Connect.Username)
	if cn := PeerCN(cl.Net.Conn); cn != "" {
		if user != "" && user != cn {
			return cn, "", "username_mismatch"
		}
		return cn, "certificate", ""
	}
	if !pk.Connect.UsernameFlag || user == "" {
		return "", "", "no_credentials"
	}
	pw := string(pk.Connect.Password)
	if h.cfg.InternalUser != "" && h.cfg.InternalPassword != "" &&
		subtle.ConstantTimeCompare([]byte(user), []byte(h.cfg.InternalUser)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pw), []byte(h.cfg.InternalPassword)) == 1 {
		return ServerIdentity, "internal", ""
	}
	if h.cfg.Passwords == nil {
		return user, "", "no_credentials"
	}
	if !h.cfg.Passwords.Check(user, pw) {
		return user, "", "bad_password"
	}
	return user, "password", ""
}

func splitIdentity(id string) (wh, gw string, ok bool) {
	s := strings.TrimPrefix(id, "gw:")
	wh, gw, ok = strings.Cut(s, "/")
	if !ok || protocol.ValidateID(wh) != nil || protocol.ValidateID(gw) != nil {
		return "", "", false
	}
	return wh, gw, true
}

func (h *AuthHook) roleOf(id string) Role {
	if id == ServerIdentity {
		return RoleServer
	}
	if _, _, ok := splitIdentity(id); ok {
		return RoleGateway
	}
	return RoleNone
}

// OnACLCheck enforces the topic ACL for publishes (write), subscriptions
// and deliveries (read).
func (h *AuthHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	id := string(cl.Properties.Username)
	role := h.roleOf(id)
	if h.allowed(role, id, topic, write) {
		return true
	}
	action := "subscribe"
	switch {
	case write:
		action = "publish"
	case !strings.ContainsAny(topic, "+#") && !strings.HasPrefix(topic, "$share/"):
		action = "receive"
	}
	h.m.ACLDenied.WithLabelValues(action, roleName(role)).Inc()
	if action != "receive" {
		h.log.Warn("MQTT topic denied by the ACL", "identity", id, "action", action, "topic", topic)
	}
	return false
}

func roleName(r Role) string {
	switch r {
	case RoleGateway:
		return "gateway"
	case RoleServer:
		return "server"
	}
	return "none"
}

// allowed reports whether identity id of role may publish (write) on topic
// or subscribe to / receive from the filter topic (read).
func (h *AuthHook) allowed(role Role, id, topic string, write bool) bool {
	root := h.topics.Root
	switch role {
	case RoleGateway:
		wh, gw, ok := splitIdentity(id)
		if !ok {
			return false
		}
		if write {
			return topic == h.topics.Up(wh, gw) || topic == h.topics.Status(wh, gw)
		}
		return topic == h.topics.Down(wh, gw)
	case RoleServer:
		if write {
			return within(topic, root+"/+/+/down") || within(topic, root+"/+/alerts") ||
				within(topic, root+"/channels/+/availability") || within(topic, root+"/+/+/status")
		}
		f := topic
		if rest, ok := strings.CutPrefix(f, "$share/"); ok {
			if _, after, ok := strings.Cut(rest, "/"); ok {
				f = after
			} else {
				return false
			}
		}
		return within(f, root+"/+/+/up") || within(f, root+"/+/+/status")
	}
	return false
}

// within reports whether every topic the filter (or topic name) f matches
// is also matched by pattern, whose only wildcard is '+': same number of
// levels, and each level of f equals pattern's or pattern has '+' there.
// '#' in f is never within a '+'-only pattern.
func within(f, pattern string) bool {
	if f == "" || strings.Contains(f, "#") {
		return false
	}
	fl := strings.Split(f, "/")
	pl := strings.Split(pattern, "/")
	if len(fl) != len(pl) {
		return false
	}
	for i := range fl {
		if pl[i] != "+" && fl[i] != pl[i] {
			return false
		}
	}
	return true
}
