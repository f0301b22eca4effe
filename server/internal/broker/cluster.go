package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster joins embedded brokers of several server replicas into one NATS
// cluster: routes between the nodes, clustered JetStream, and the MQTT
// streams replicated on up to three nodes (StreamReplicas), so a gateway
// connected to any node is heard by the ingest on every node.
//
// Routes are plain TCP without authentication: listen on a private network
// only.
type Cluster struct {
	// Name is the cluster's name, the same on every node (default
	// "shelfsync").
	Name string
	// Listen is this node's route address, HOST:PORT; empty: no cluster.
	Listen string
	// Routes are the other nodes' route addresses (HOST:PORT or
	// nats-route://HOST:PORT); this node's own address may be among them.
	Routes []string
	// Size is how many nodes the cluster has (default: the routes that
	// are not this node, plus one); the MQTT streams are kept on
	// min(Size, 3) of them.
	Size int
	// StartTimeout bounds the wait at start for a quorum of nodes to elect
	// JetStream's meta leader (default 2 min).
	StartTimeout time.Duration
}

func (c Cluster) enabled() bool { return c.Listen != "" }

func (c Cluster) startTimeout() time.Duration {
	if c.StartTimeout <= 0 {
		return 2 * time.Minute
	}
	return c.StartTimeout
}

// routeURLs normalises Routes to nats-route:// URLs.
func (c Cluster) routeURLs() []string {
	var out []string
	for _, r := range c.Routes {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if !strings.Contains(r, "://") {
			r = "nats-route://" + r
		}
		out = append(out, r)
	}
	return out
}

// apply sets the cluster options and returns the MQTT streams' replicas.
func (c Cluster) apply(o *server.Options) (int, error) {
	host, p, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return 0, fmt.Errorf("cluster listen address %q: %w (want HOST:PORT, e.g. 0.0.0.0:6222)", c.Listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return 0, fmt.Errorf("cluster listen address %q: the port must be 1-65535", c.Listen)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	routes := c.routeURLs()
	for _, r := range routes {
		if _, _, err := net.SplitHostPort(strings.SplitN(r, "://", 2)[1]); err != nil {
			return 0, fmt.Errorf("cluster route %q: %w (want HOST:PORT)", r, err)
		}
	}
	if len(routes) == 0 {
		return 0, errors.New("cluster: no routes: name the other nodes' route addresses")
	}
	name := c.Name
	if name == "" {
		name = "shelfsync"
	}
	size := c.Size
	if size <= 0 {
		size = 1
		for _, r := range routes {
			if !strings.HasSuffix(r, "://"+c.Listen) {
				size++
			}
		}
	}
	replicas := min(size, 3)
	o.Cluster = server.ClusterOpts{Name: name, Host: host, Port: port}
	// nats-server starts routing only once its client listener is open
	// (StartRouting waits for AcceptLoop, which DontListen skips: routes
	// would never start and Shutdown would hang). So a clustered node has
	// a NATS client port, on loopback and a random port; its clients pass
	// the same authentication hook.
	o.DontListen = false
	o.Host, o.Port = "127.0.0.1", server.RANDOM_PORT
	o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
	o.MQTT.StreamReplicas = replicas
	o.MQTT.ConsumerReplicas = replicas
	o.MQTT.ConsumerMemoryStorage = true
	return replicas, nil
}

// waitMetaLeader waits until the cluster's JetStream has a meta leader.
func (b *Broker) waitMetaLeader(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if info, err := b.ns.Jsz(&server.JSzOptions{}); err == nil && info.Meta != nil && info.Meta.Leader != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded broker: no JetStream meta leader within %s: fewer than a quorum of the cluster's nodes reached each other (check --cluster-routes and that the other replicas run)", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
