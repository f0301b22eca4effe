package config

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/flagconf"
)

// TestSampleConfig: deploy's agent.toml (with its [tls] table) loads, and a
// certificate with a plain tcp:// broker is refused.
func TestSampleConfig(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs)
	require.NoError(t, flagconf.Load(fs, []string{"--config", "../../../deploy/systemd/etc/shelfsync/agent.toml"}, "config"))
	require.Equal(t, "/etc/shelfsync/pki/ca.crt", c.TLSCA)
	require.Equal(t, "/etc/shelfsync/pki/gateway.crt", c.TLSCert)
	require.True(t, c.TLSEnabled())
	require.Empty(t, c.Insecure())

	c.BrokerURL = "tcp://127.0.0.1:1884"
	require.ErrorContains(t, c.Validate(), "plain TCP but tls-ca/tls-cert are set")
	require.NotEmpty(t, c.Insecure())
}
