package config

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/flagconf"
)

// TestBrokerList: --broker takes a comma-separated list, kept in order with
// blanks dropped; every URL needs a scheme, and TLS and plain TCP do not mix.
func TestBrokerList(t *testing.T) {
	load := func(broker string) *Config {
		var c Config
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.Register(fs)
		require.NoError(t, flagconf.Load(fs, []string{"--warehouse", "WH1", "--gateway", "gw-1", "--data", t.TempDir(), "--broker", broker}, "config"))
		return &c
	}
	c := load("ssl://a:8883, ssl://b:8883,,ssl://c:8883")
	require.Equal(t, []string{"ssl://a:8883", "ssl://b:8883", "ssl://c:8883"}, c.Brokers())
	require.True(t, c.TLSEnabled())
	require.NoError(t, c.Validate())

	c = load("tcp://a:1884")
	require.Equal(t, []string{"tcp://a:1884"}, c.Brokers())
	require.False(t, c.TLSEnabled())
	require.NoError(t, c.Validate())

	require.ErrorContains(t, load("ssl://a:8883,tcp://b:1884").Validate(), "mix TLS and plain TCP")
	require.ErrorContains(t, load("ssl://a:8883,b:8883").Validate(), `"b:8883" needs a scheme`)
	require.ErrorContains(t, load(" , ").Validate(), "at least one URL")
}
