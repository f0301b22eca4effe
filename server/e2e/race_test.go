package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRacingChannelsOverHTTPTakeExactlyTheStock is the done-when race
// against a real server process: 3 channels × 32 clients race over HTTP
// for 200 units (4 skus × 50), each client sending 4 single-unit
// requests, checkout holds and orders mixed. Exactly 200 units are held or
// reserved; every other request is refused (409: the refuse channels'
// orders, and any hold) or taken backordered (the backorder channel's
// orders), never anything else; the capped channel stays within its cap;
// and no availability message — on the retained MQTT topic, subscribed to
// before the race, or at a real webhook receiver — ever offers a channel
// more than can ship once the requests it counts are met (nor more than
// the capped channel's cap leaves), ending at 0 everywhere.
func TestRacingChannelsOverHTTPTakeExactlyTheStock(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	skus := []string{"A", "B", "C", "D"}
	const perSKU, clients, perClient, shopCap = 50, 32, 4, 20
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{{"code": "BIN-1", "type": "pick", "sellable": true}}, nil)
	var csv strings.Builder
	csv.WriteString("warehouse,location,sku,qty\n")
	for _, s := range skus {
		fmt.Fprintf(&csv, "wh1,BIN-1,%s,%d\n", s, perSKU)
	}
	resp, err := http.Post("http://"+c.httpAddr+"/api/v1/imports/stock?by=race", "text/csv", strings.NewReader(csv.String()))
	require.NoError(t, err)
	var job struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&job))
	resp.Body.Close()
	waitFor(t, 20*time.Second, "the stock import", func() bool {
		var st struct {
			Status string
			Failed int
		}
		getJSON(t, "http://"+c.httpAddr+"/api/v1/imports/"+job.ID, &st)
		require.Zero(t, st.Failed)
		return st.Status == "done"
	})

	channels := map[string]map[string]any{
		"web":    {"share_pct": 100},                        // refuse (the default)
		"market": {"share_pct": 100, "policy": "backorder"}, // takes what cannot ship as backordered
		"shop":   {"share_pct": 100, "cap": shopCap},        // refuse, at most 20 of each sku
	}
	topics := c.tap("shelfsync/v1/channels/+/availability")
	rcv := newHookReceiver(t)
	rcv.start()
	rcv.register(c, map[string]any{"events": []string{"availability"}})
	for name, body := range channels {
		require.Equal(t, 200, c.call("PUT", "/api/v1/channels/"+name, body, nil))
	}
	for name := range channels {
		waitFor(t, 20*time.Second, name+" offered the stock", func() bool {
			a, ok := lastOffer(t, rcv, topics, name)
			return ok && a.of("A") > 0
		})
	}

	type answer struct {
		channel, sku, kind string // kind: hold, order
		code               int
		status             string
		seq                uint64
		body               string
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
		client  = &http.Client{Timeout: 30 * time.Second}
	)
	post := func(path string, body any) (int, []byte, error) {
		raw, _ := json.Marshal(body)
		resp, err := client.Post("http://"+c.httpAddr+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	start := time.Now()
	begin := make(chan struct{})
	for _, ch := range []string{"web", "market", "shop"} {
		for k := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-begin
				for i := range perClient {
					sku := skus[(k+i)%len(skus)]
					id := fmt.Sprintf("%s-%d-%d", ch, k, i)
					lines := []map[string]any{{"sku": sku, "qty": 1}}
					a := answer{channel: ch, sku: sku, kind: "order"}
					var code int
					var b []byte
					var err error
					if (k+i)%2 == 0 {
						a.kind = "hold"
						code, b, err = post("/api/v1/holds", map[string]any{"warehouse": "wh1", "channel": ch, "checkout_id": id, "lines": lines})
					} else {
						code, b, err = post("/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": ch, "external_id": id, "lines": lines})
					}
					if err != nil {
						a.body = err.Error()
					} else {
						var o struct {
							Status string
							Seq    uint64
						}
						_ = json.Unmarshal(b, &o)
						a.code, a.status, a.seq, a.body = code, o.Status, o.Seq, string(b)
					}
					mu.Lock()
					answers = append(answers, a)
					mu.Unlock()
				}
			}()
		}
	}
	close(begin)
	wg.Wait()
	took := time.Since(start)

	require.Len(t, answers, 3*clients*perClient)
	granted := map[string]int{} // sku → held or reserved
	shop := map[string]int{}
	var refused, backordered int
	var maxSeq uint64
	for _, a := range answers {
		switch {
		case a.code == http.StatusCreated && (a.status == "held" || a.status == "open"):
			require.Equal(t, map[string]string{"hold": "held", "order": "open"}[a.kind], a.status, "%+v", a)
			granted[a.sku]++
			if a.channel == "shop" {
				shop[a.sku]++
			}
		case a.code == http.StatusCreated && a.status == "backordered":
			require.Equal(t, "market", a.channel, "only the backorder channel backorders: %+v", a)
			require.Equal(t, "order", a.kind, "%+v", a)
			backordered++
		case a.code == http.StatusConflict:
			require.False(t, a.channel == "market" && a.kind == "order", "the backorder channel's orders are never refused: %+v", a)
			var r struct {
				Available []struct {
					SKU                  string
					Requested, Available int64
				}
			}
			require.NoError(t, json.Unmarshal([]byte(a.body), &r), a.body)
			require.Len(t, r.Available, 1, a.body)
			require.Equal(t, a.sku, r.Available[0].SKU)
			require.Less(t, r.Available[0].Available, r.Available[0].Requested, "a refusal says what is available: %s", a.body)
			refused++
		default:
			t.Fatalf("unexpected answer %+v", a)
		}
		maxSeq = max(maxSeq, a.seq)
	}
	total := 0
	for _, s := range skus {
		require.Equal(t, perSKU, granted[s], "exactly the stock of %s is held or reserved", s)
		require.LessOrEqual(t, shop[s], shopCap, "shop's cap on %s", s)
		total += granted[s]
	}
	require.Equal(t, 200, total)
	require.Equal(t, 3*clients*perClient, total+refused+backordered)

	var av struct {
		Items []struct {
			SKU                 string
			Reserved, Available int64
		}
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/availability?warehouse=wh1", &av)
	var reserved int64
	for _, it := range av.Items {
		reserved += it.Reserved
		require.Zero(t, it.Available, it.SKU)
	}
	require.Equal(t, int64(200), reserved, "the server's availability agrees")
	require.Empty(t, c.conflicts("wh1", "oversell"), "nothing promised beyond stock")

	// Every offer within what can ship once the requests it counts (seq ≤
	// its seq) are met; the capped channel also within its cap.
	bound := func(ch, sku string, seq uint64) int64 {
		left, capLeft := int64(perSKU), int64(shopCap)
		for _, a := range answers {
			if a.sku == sku && a.code == http.StatusCreated && a.status != "backordered" && a.seq <= seq {
				left--
				if a.channel == "shop" {
					capLeft--
				}
			}
		}
		if ch == "shop" {
			return max(min(left, capLeft), 0)
		}
		return max(left, 0)
	}
	check := func(src string, a availability) {
		t.Helper()
		require.Contains(t, channels, a.Channel)
		for _, s := range skus {
			require.LessOrEqual(t, a.of(s), bound(a.Channel, s, a.Seq), "%s: %s at seq %d offers %d of %s", src, a.Channel, a.Seq, a.of(s), s)
		}
	}
	for name := range channels {
		waitFor(t, 20*time.Second, name+" offered nothing once the stock is taken", func() bool {
			a, ok := lastOffer(t, rcv, topics, name)
			if !ok || a.Seq < maxSeq {
				return false
			}
			for _, s := range skus {
				if a.of(s) != 0 {
					return false
				}
			}
			return true
		})
	}
	msgs, hooks := 0, 0
	for _, m := range topics.all() {
		var a availability
		require.NoError(t, json.Unmarshal(m.payload, &a))
		check("mqtt", a)
		msgs++
	}
	for _, h := range rcv.received("availability") {
		var a availability
		require.NoError(t, json.Unmarshal(h.body, &a))
		check("webhook", a)
		hooks++
	}
	require.Zero(t, rcv.badSig)
	t.Logf("%d requests in %v: %d held or reserved, %d refused, %d backordered; %d MQTT and %d webhook offers checked",
		len(answers), took.Round(time.Millisecond), total, refused, backordered, msgs, hooks)
}

// lastOffer returns the latest offer to channel that both the retained
// MQTT topic and the webhook receiver have seen (the lower seq of the two
// latest), and whether both have seen one.
func lastOffer(t *testing.T, rcv *hookReceiver, topics *mqttTap, channel string) (availability, bool) {
	var viaHook, viaMQTT *availability
	for _, h := range rcv.received("availability") {
		var a availability
		require.NoError(t, json.Unmarshal(h.body, &a))
		if a.Channel == channel && (viaHook == nil || a.Seq >= viaHook.Seq) {
			viaHook = &a
		}
	}
	for _, m := range topics.all() {
		var a availability
		require.NoError(t, json.Unmarshal(m.payload, &a))
		if a.Channel == channel && (viaMQTT == nil || a.Seq >= viaMQTT.Seq) {
			viaMQTT = &a
		}
	}
	if viaHook == nil || viaMQTT == nil {
		return availability{}, false
	}
	if viaMQTT.Seq < viaHook.Seq {
		return *viaMQTT, true
	}
	return *viaHook, true
}
