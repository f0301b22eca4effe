package broker

import (
	"crypto/subtle"
	"crypto/tls"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server"
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
// The ACL becomes each connection's NATS permissions when it authenticates
// (Check): MQTT topics are NATS subjects there (subject.go). As with
// Mosquitto, a publish the ACL denies is acknowledged and dropped (the
// client stays connected); a denied subscription gets SUBACK 0x80; a last
// will on a topic the identity may not publish is dropped when it fires.

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
	ACLDenied *prometheus.CounterVec // by action (publish, subscribe) and role
}

// NewAuthMetrics creates the instruments and registers them with reg (when not nil).
func NewAuthMetrics(reg prometheus.Registerer) *AuthMetrics {
	m := &AuthMetrics{
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_broker_connect_accepted_total",
			Help: "Embedded broker connections authenticated, by method (certificate, password, internal, open)."}, []string{"method"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_broker_connect_refused_total",
			Help: "Embedded broker connections refused at authentication, by reason (no_credentials, bad_password, bad_identity, username_mismatch, client_id, per_ip_limit, ingest_unavailable)."}, []string{"reason"}),
		ACLDenied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_broker_acl_denied_total",
			Help: "Topic ACL denials by action (publish, subscribe) and role (gateway, server)."}, []string{"action", "role"}),
	}
	if reg != nil {
		reg.MustRegister(m.Accepted, m.Refused, m.ACLDenied)
	}
	return m
}

// AuthConfig configures Auth.
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
	// AllowAll admits every client with every permission (development,
	// no TLS and no password file).
	AllowAll bool
	Logger   *slog.Logger
	Metrics  *AuthMetrics
}

// Auth authenticates the broker's clients (client certificate CN, or
// username and password) and gives each its permissions. It is the
// broker's one authentication hook (nats-server's CustomClientAuthentication).
type Auth struct {
	cfg     AuthConfig
	topics  protocol.Topics
	log     *slog.Logger
	m       *AuthMetrics
	checked atomic.Int64 // connections that reached authentication
	perIP   *perIP       // set by Start: clients per remote IP
	wh      *warehouses  // set by Start with Config.Warehouses: warehouse consumers
	roles   sync.Map     // MQTT client id → Role, for the broker's log of denials
}

var _ server.Authentication = (*Auth)(nil)

// NewAuth builds the hook.
func NewAuth(cfg AuthConfig) *Auth {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewAuthMetrics(nil)
	}
	return &Auth{cfg: cfg, topics: protocol.NewTopics(cfg.Root), log: cfg.Logger, m: cfg.Metrics}
}

// PeerCN returns the CN of the verified client certificate of a TLS
// connection state, or "" when there is none.
func PeerCN(st interface {
	GetTLSConnectionState() *tls.ConnectionState
}) string {
	cs := st.GetTLSConnectionState()
	// With ClientAuth VerifyClientCertIfGiven or stricter, a certificate in
	// PeerCertificates has been verified against the client CA bundle.
	if cs == nil || !cs.HandshakeComplete || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

// Check implements server.Authentication: it establishes the client's
// identity, records it as the connection's user name (like Mosquitto's
// use_identity_as_username) and sets its permissions from the ACL.
func (h *Auth) Check(c server.ClientAuthentication) bool {
	h.checked.Add(1)
	opts := c.GetOpts()
	log := h.log.With("remote", addrString(c))
	if ip := remoteIP(c); ip != "" && h.perIP != nil {
		if ok, first := h.perIP.admit(ip); !ok {
			h.m.Refused.WithLabelValues("per_ip_limit").Inc()
			if first { // once per address and second: a flood must not flood the log
				log.Warn("MQTT connection refused: too many clients from this address (--mqtt-max-conns-per-ip)", "limit", h.perIP.limit)
			}
			return false
		}
	}
	if h.cfg.AllowAll {
		if cid, isMQTT := mqttClientID(c); isMQTT && h.wh != nil {
			for _, wh := range clientWarehouses(cid) {
				if !h.ensureWarehouse(log, wh) {
					return false
				}
			}
		}
		h.m.Accepted.WithLabelValues("open").Inc()
		return true
	}
	id, method, reason := h.authenticate(c, opts)
	if reason != "" {
		h.m.Refused.WithLabelValues(reason).Inc()
		log.Warn("MQTT connection refused", "reason", reason, "identity", id, "username", opts.Username)
		return false
	}
	role := h.roleOf(id)
	if role == RoleNone {
		h.m.Refused.WithLabelValues("bad_identity").Inc()
		log.Warn("MQTT connection refused: identity is neither \"server\" nor {warehouse}/{gateway}", "identity", id)
		return false
	}
	if role == RoleGateway {
		wh, gw, _ := splitIdentity(id)
		id = wh + "/" + gw // normalise a legacy "gw:" CN
		if cid, ok := mqttClientID(c); ok && cid != protocol.ClientID(wh, gw) {
			h.m.Refused.WithLabelValues("client_id").Inc()
			log.Warn("MQTT connection refused: a gateway's client id must be its identity (no other gateway may take its session over)",
				"identity", id, "client_id", cid, "want", protocol.ClientID(wh, gw))
			return false
		}
		if h.wh != nil && !h.ensureWarehouse(log, wh) {
			return false
		}
	}
	perms := h.permissions(role, id)
	cid, isMQTT := mqttClientID(c)
	if role == RoleServer && !isMQTT {
		perms = nil // the server's in-process NATS connection: every right
	}
	if isMQTT {
		h.roles.Store(cid, role)
	}
	c.RegisterUser(&server.User{Username: id, Permissions: perms})
	h.m.Accepted.WithLabelValues(method).Inc()
	log.Debug("MQTT client authenticated", "identity", id, "method", method)
	return true
}

// ensureWarehouse makes sure the consumer of a connecting gateway's
// warehouse exists (warehouses.go) and reports whether it does; if not,
// the gateway is refused and connects again later.
func (h *Auth) ensureWarehouse(log *slog.Logger, wh string) bool {
	if err := h.wh.ensure(wh); err != nil {
		h.m.Refused.WithLabelValues("ingest_unavailable").Inc()
		log.Warn("MQTT connection refused: the ingest of its warehouse cannot be set up yet; the gateway connects again", "warehouse", wh, "err", err)
		return false
	}
	return true
}

func addrString(c server.ClientAuthentication) string {
	if a := c.RemoteAddress(); a != nil {
		return a.String()
	}
	return "in-process"
}

func (h *Auth) authenticate(c server.ClientAuthentication, opts *server.ClientOpts) (id, method, reason string) {
	user := opts.Username
	if cn := PeerCN(c); cn != "" {
		if user != "" && user != cn {
			return cn, "", "username_mismatch"
		}
		return cn, "certificate", ""
	}
	if user == "" {
		return "", "", "no_credentials"
	}
	pw := opts.Password
	if h.cfg.InternalUser != "" && h.cfg.InternalPassword != "" &&
		subtle.ConstantTimeCompare([]byte(user), []byte(h.cfg.InternalUser)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pw), []byte(h.cfg.InternalPassword)) == 1 {
		return ServerIdentity, "internal", ""
	}
	if h.cfg.Passwords == nil {
		return user, "", "no_credentials"
	}
	if !h.cfg.Passwords.Get().Check(user, pw) {
		return user, "", "bad_password"
	}
	return user, "password", ""
}

// mqttClientID returns the MQTT client id of c when c is an MQTT client.
// nats-server does not export it; it is read by reflection (checked by
// TestGatewayClientIDEnforced against the pinned nats-server version).
func mqttClientID(c server.ClientAuthentication) (string, bool) {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return "", false
	}
	m := v.Elem().FieldByName("mqtt")
	if !m.IsValid() || m.Kind() != reflect.Pointer || m.IsNil() {
		return "", false
	}
	cid := m.Elem().FieldByName("cid")
	if !cid.IsValid() || cid.Kind() != reflect.String {
		return "", false
	}
	return cid.String(), true
}

func splitIdentity(id string) (wh, gw string, ok bool) {
	s := strings.TrimPrefix(id, "gw:")
	wh, gw, ok = strings.Cut(s, "/")
	if !ok || protocol.ValidateID(wh) != nil || protocol.ValidateID(gw) != nil {
		return "", "", false
	}
	return wh, gw, true
}

func (h *Auth) roleOf(id string) Role {
	if id == ServerIdentity {
		return RoleServer
	}
	if _, _, ok := splitIdentity(id); ok {
		return RoleGateway
	}
	return RoleNone
}

// permissions turns the ACL of role into NATS subject permissions.
func (h *Auth) permissions(role Role, id string) *server.Permissions {
	root := h.topics.Root
	var pub, sub []string
	switch role {
	case RoleGateway:
		wh, gw, _ := splitIdentity(id)
		pub = []string{TopicSubject(h.topics.Up(wh, gw)), TopicSubject(h.topics.Status(wh, gw))}
		sub = []string{TopicSubject(h.topics.Down(wh, gw))}
	case RoleServer:
		for _, p := range serverPublish {
			pub = append(pub, TopicSubject(root+p))
		}
		for _, p := range serverSubscribe {
			sub = append(sub, TopicSubject(root+p), TopicSubject("$share/*/"+root+p))
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// The server's topics below the root ('+' one level).
var (
	serverPublish   = []string{"/+/+/down", "/+/alerts", "/channels/+/availability", "/+/+/status", "/owners/+/alerts", "/owners/+/channels/+/availability"}
	serverSubscribe = []string{"/+/+/up", "/+/+/status"}
)

// clientRole returns the role of the MQTT client with client id cid.
func (h *Auth) clientRole(cid string) Role {
	if r, ok := h.roles.Load(cid); ok {
		return r.(Role)
	}
	return RoleNone
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
// or subscribe to / receive from the filter topic (read), by the ACL. The
// broker enforces the same through permissions(); TestACL checks both.
func (h *Auth) allowed(role Role, id, topic string, write bool) bool {
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
		f := topic
		if !write {
			if rest, ok := strings.CutPrefix(f, "$share/"); ok {
				if _, after, ok := strings.Cut(rest, "/"); ok {
					f = after
				} else {
					return false
				}
			}
		}
		pats := serverSubscribe
		if write {
			pats = serverPublish
		}
		for _, p := range pats {
			if within(f, root+p) {
				return true
			}
		}
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
