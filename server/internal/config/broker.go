package config

import (
	"flag"
	"fmt"
	"time"
)

// Broker holds the embedded broker's connection limits (ignored with
// --broker). Zero values take the defaults below.
type Broker struct {
	// MQTTMaxConns bounds the clients connected at once; one over it is
	// closed at once.
	MQTTMaxConns int
	// MQTTConnectTimeout bounds the time from a TCP connection to its
	// authenticated MQTT CONNECT (TLS handshake included): idle
	// connections that never say who they are are closed after it.
	MQTTConnectTimeout time.Duration
}

func (b *Broker) register(fs *flag.FlagSet) {
	fs.IntVar(&b.MQTTMaxConns, "mqtt-max-conns", 10000, "embedded broker: most clients connected at once (keep it well under the process's file descriptor limit, LimitNOFILE)")
	fs.DurationVar(&b.MQTTConnectTimeout, "mqtt-connect-timeout", 10*time.Second, "embedded broker: a connection that has not authenticated (TLS handshake and MQTT CONNECT) within this is closed")
}

func (b *Broker) validate() []error {
	var errs []error
	if b.MQTTMaxConns < 0 {
		errs = append(errs, fmt.Errorf("mqtt-max-conns: %d must be positive", b.MQTTMaxConns))
	}
	if b.MQTTConnectTimeout < 0 || b.MQTTConnectTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("mqtt-connect-timeout: %s must be between 0 (default) and 5m", b.MQTTConnectTimeout))
	}
	return errs
}
