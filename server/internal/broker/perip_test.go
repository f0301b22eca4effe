package broker

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestPerIPConnectionLimit against the live broker: with a bound of 3 per
// address, a fourth gateway from 127.0.0.1 is refused at CONNECT and
// counted (per_ip_limit), while a gateway from another address (127.0.0.2)
// still connects; once a gateway from 127.0.0.1 leaves, another from there
// gets in again.
func TestPerIPConnectionLimit(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "passwd")
	var ids []string
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("WH1/gw-%02d", i)
		ids = append(ids, id)
		require.NoError(t, SetPassword(pwFile, id, "pw-"+id))
	}
	pw, err := LoadPasswords(pwFile)
	require.NoError(t, err)
	m := NewAuthMetrics(prometheus.NewRegistry())
	b, err := Start(Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), MaxConnsPerIP: 3,
		Auth: NewAuth(AuthConfig{Passwords: pw, InternalUser: ServerIdentity, InternalPassword: internalPW, Metrics: m})})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })

	dial := func(id, from string) (paho.Client, error) {
		wh, gw, _ := splitIdentity(id)
		return mqttDialFrom(t, b, protocol.ClientID(wh, gw), id, "pw-"+id, from)
	}
	refused := func() float64 { return testutil.ToFloat64(m.Refused.WithLabelValues("per_ip_limit")) }

	var first paho.Client
	for i := 0; i < 3; i++ {
		c, err := dial(ids[i], "127.0.0.1")
		require.NoError(t, err, "gateway %d of 3 from one address", i+1)
		if i == 0 {
			first = c
		}
	}
	_, err = dial(ids[3], "127.0.0.1")
	require.Error(t, err, "a fourth client from the same address is refused")
	require.Equal(t, 1.0, refused())

	_, err = dial(ids[4], "127.0.0.2")
	require.NoError(t, err, "another address has its own bound")

	first.Disconnect(50)
	waitFor(t, 30*time.Second, "a client from 127.0.0.1 admitted again after one left", func() bool {
		c, err := dial(ids[5], "127.0.0.1")
		if err != nil {
			return false
		}
		c.Disconnect(50)
		return true
	})
	require.GreaterOrEqual(t, refused(), 1.0)
}
