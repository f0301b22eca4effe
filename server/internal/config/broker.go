package config

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Broker holds the embedded broker's connection limits (ignored with
// --broker). Zero values take the defaults below.
type Broker struct {
	// MQTTMaxConns bounds the clients connected at once; one over it is
	// closed at once.
	MQTTMaxConns int
	// MQTTMaxConnsPerIP bounds the clients connected at once from one
	// remote IP address (0: no bound).
	MQTTMaxConnsPerIP int
	// MQTTConnectTimeout bounds the time from a TCP connection to its
	// authenticated MQTT CONNECT (TLS handshake included): idle
	// connections that never say who they are are closed after it.
	MQTTConnectTimeout time.Duration
	// Cluster joins the embedded brokers of several replicas into one NATS
	// cluster: ClusterListen is this node's route address (empty: not
	// clustered), ClusterRoutes the nodes' route addresses
	// (comma-separated), ClusterName the cluster's name, ClusterNode this
	// node's name (unique in the cluster).
	ClusterListen string
	ClusterRoutes string
	ClusterName   string
	ClusterNode   string
}

// ClusterRouteList returns --cluster-routes as a list.
func (b *Broker) ClusterRouteList() []string {
	var out []string
	for _, r := range strings.Split(b.ClusterRoutes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func (b *Broker) register(fs *flag.FlagSet) {
	fs.IntVar(&b.MQTTMaxConns, "mqtt-max-conns", 10000, "embedded broker: most clients connected at once (keep it well under the process's file descriptor limit, LimitNOFILE)")
	fs.IntVar(&b.MQTTMaxConnsPerIP, "mqtt-max-conns-per-ip", 500, "embedded broker: most clients connected at once from one IP address (room for a warehouse's gateways behind one NAT address); one over it is refused at its CONNECT and counted (shelfsync_broker_connect_refused_total{reason=\"per_ip_limit\"}); 0: no bound")
	fs.DurationVar(&b.MQTTConnectTimeout, "mqtt-connect-timeout", 10*time.Second, "embedded broker: a connection that has not authenticated (TLS handshake and MQTT CONNECT) within this is closed")
	host, _ := os.Hostname()
	fs.StringVar(&b.ClusterListen, "cluster-listen", "", "embedded broker: route address HOST:PORT (e.g. 0.0.0.0:6222) that joins this replica's broker to the others' into one NATS cluster, its MQTT streams replicated on up to 3 nodes; gateways may connect to any replica, and with --partition warehouse (the default) each warehouse's messages are read by the one replica holding its lease; plain TCP without authentication, so a private network only; empty: not clustered")
	fs.StringVar(&b.ClusterRoutes, "cluster-routes", "", "with --cluster-listen: the route addresses of the cluster's nodes, comma-separated HOST:PORT (this node's own may be listed); start waits until a quorum of them elected JetStream's leader")
	fs.StringVar(&b.ClusterName, "cluster-name", "shelfsync", "with --cluster-listen: the cluster's name, the same on every node")
	fs.StringVar(&b.ClusterNode, "cluster-node", host, "with --cluster-listen: this node's name, unique in the cluster (default: the host name)")
}

func (b *Broker) validate() []error {
	var errs []error
	if b.MQTTMaxConnsPerIP < 0 {
		errs = append(errs, fmt.Errorf("mqtt-max-conns-per-ip: %d must be 0 (no bound) or positive", b.MQTTMaxConnsPerIP))
	}
	if b.MQTTMaxConns < 0 {
		errs = append(errs, fmt.Errorf("mqtt-max-conns: %d must be positive", b.MQTTMaxConns))
	}
	if b.MQTTConnectTimeout < 0 || b.MQTTConnectTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("mqtt-connect-timeout: %s must be between 0 (default) and 5m", b.MQTTConnectTimeout))
	}
	if b.ClusterListen != "" {
		if _, _, err := net.SplitHostPort(b.ClusterListen); err != nil {
			errs = append(errs, fmt.Errorf("cluster-listen: %q is not HOST:PORT", b.ClusterListen))
		}
		if len(b.ClusterRouteList()) == 0 {
			errs = append(errs, fmt.Errorf("cluster-routes: name the cluster's route addresses (HOST:PORT,...) with --cluster-listen"))
		}
		if b.ClusterNode == "" {
			errs = append(errs, fmt.Errorf("cluster-node: must name this node"))
		}
	}
	return errs
}
