package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

func getJSON(t *testing.T, s *Server, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr() + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func metricsText(t *testing.T, s *Server) string {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestFarFutureGatewayClockRefused: a gateway of another warehouse says
// hello and sends a batch with a clock ten years ahead. Both are refused
// with an error ack naming the clock, nothing of it is applied, a metric
// and an alert say so, and the acks other gateways get keep true time, so
// their stamps stay true. An op stamped ahead in an otherwise good batch
// is quarantined, not merged.
func TestFarFutureGatewayClockRefused(t *testing.T) {
	s := startServer(t, t.TempDir())
	good := newFakeGateway(t, s.MQTTAddr(), "W1", "gw-good")
	bad := newFakeGateway(t, s.MQTTAddr(), "W2", "gw-2036")
	future := protocol.MakeHLC(time.Now().AddDate(10, 0, 0).UnixMilli(), 0)

	raw, err := protocol.Encode(&protocol.Hello{Header: protocol.Header{WH: "W2", GW: "gw-2036"}, HLC: future})
	require.NoError(t, err)
	a := bad.waitAck(bad.send(raw))
	require.Contains(t, a.Error, "clock ahead")
	require.Contains(t, a.Error, "NTP")
	require.Less(t, a.HLC.Millis(), time.Now().Add(time.Minute).UnixMilli(), "the refusal itself carries true time")

	b := &protocol.OpBatch{Header: protocol.Header{WH: "W2", GW: "gw-2036"}, First: 1, Last: 1, HLC: future,
		Ops: []protocol.Op{{Seq: 1, HLC: future, Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 10}}}
	raw, err = protocol.Encode(b)
	require.NoError(t, err)
	waitFor(t, 20*time.Second, "the batch's refusal", func() bool {
		// Error acks are paced (one a second per gateway): resend, as an
		// agent does, until one answers.
		n := bad.send(raw)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			bad.mu.Lock()
			if len(bad.acks) > n {
				a = bad.acks[n]
			}
			bad.mu.Unlock()
			if a != nil && strings.Contains(a.Error, "clock ahead") && len(bad.acks) > n {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	})
	require.Zero(t, a.WM, "nothing of the batch was applied")
	require.Empty(t, stock(t, s, "W2"))

	a = good.sendBatch(1, 3, 1)
	require.Empty(t, a.Error)
	require.Equal(t, uint64(3), a.WM)
	require.Less(t, a.HLC.Millis(), time.Now().Add(time.Minute).UnixMilli(), "the other gateways' acks (and so their stamps) stay true")
	require.Greater(t, a.HLC.Millis(), time.Now().Add(-time.Minute).UnixMilli())

	m := metricsText(t, s)
	require.Regexp(t, `shelfsync_ingest_clock_refused_total\{message="hello"\} [1-9]`, m)
	require.Regexp(t, `shelfsync_ingest_clock_refused_total\{message="ops"\} [1-9]`, m)
	require.Regexp(t, `shelfsync_gateway_clock_skew_seconds\{gateway="gw-2036",warehouse="W2"\} 3\.1\d*e\+08`, m)

	var alerts struct {
		Items []struct{ Kind, Warehouse, Gateway, Message string }
	}
	waitFor(t, 10*time.Second, "a gateway-clock alert", func() bool {
		getJSON(t, s, "/api/v1/alerts?kind=gateway-clock", &alerts)
		return len(alerts.Items) > 0
	})
	require.Equal(t, "W2", alerts.Items[0].Warehouse)
	require.Equal(t, "gw-2036", alerts.Items[0].Gateway)
	require.Len(t, alerts.Items, 1, "one alert while the clock stays wrong")

	// The good gateway's clock is right but one op was stamped while it
	// ran ahead: that op is quarantined, the others apply.
	ob := &protocol.OpBatch{Header: protocol.Header{WH: "W1", GW: "gw-good"}, First: 4, Last: 5, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0),
		Ops: []protocol.Op{
			{Seq: 4, HLC: future, Kind: protocol.OpReceive, Location: "L", SKU: "sku1", Qty: 100},
			{Seq: 5, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0), Kind: protocol.OpReceive, Location: "L", SKU: "sku1", Qty: 1},
		}}
	raw, err = protocol.Encode(ob)
	require.NoError(t, err)
	a = good.waitAck(good.send(raw))
	require.Equal(t, uint64(5), a.WM)
	require.Equal(t, int64(4), stock(t, s, "W1")["L/sku1"])
	var q struct {
		Items []struct {
			Seq    uint64
			Reason string
		}
	}
	getJSON(t, s, "/api/v1/quarantine?warehouse=W1", &q)
	require.Len(t, q.Items, 1)
	require.Equal(t, uint64(4), q.Items[0].Seq)
	require.Contains(t, q.Items[0].Reason, "ahead", fmt.Sprint(q.Items))
}
