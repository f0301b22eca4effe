package replicas

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// What the inventory test (inventory_test.go) needs beside the harness:
// the replicas' REST API, a webhook receiver, the expected ledger and
// availability, and a look at the records in PostgreSQL.

var apiClient = &http.Client{Timeout: 30 * time.Second}

// call sends a JSON request to the replica's API and decodes a 2xx answer
// into out (when not nil). It returns the status code; err is set for a
// transport error or an answer that is not 2xx (with its body).
func (r *replica) call(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+r.http+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("replica %d: %s %s: %s: %s", r.i, method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("replica %d: %s %s: %v: %s", r.i, method, path, err, b)
		}
	}
	return resp.StatusCode, nil
}

// must is call that requires a 2xx answer; it returns the status code.
func (r *replica) must(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	code, err := r.call(method, path, body, out)
	require.NoError(t, err)
	return code
}

// leaders returns the replicas whose /metrics report
// shelfsync_replica_leader 1 (a dead replica reports nothing).
func (c *cluster) leaders() []*replica {
	var out []*replica
	for _, r := range c.replicas {
		if r.metric("shelfsync_replica_leader", "") == 1 {
			out = append(out, r)
		}
	}
	return out
}

// kv reads one record of the kv table (store.Records over PostgreSQL).
func kv(ctx context.Context, db *pgx.Conn, key string) ([]byte, bool, error) {
	var v []byte
	err := db.QueryRow(ctx, `SELECT v FROM kv WHERE k = $1`, []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// hookHit is one POST the webhook receiver got, kept as it came: the
// receiver does not de-duplicate.
type hookHit struct {
	endpoint string // "events" or "avail": the URL path
	event    string // X-Shelfsync-Event
	delivery string // X-Shelfsync-Delivery
	attempt  string // X-Shelfsync-Attempt
	at       time.Time
	body     []byte
}

// hookReceiver is the webhook endpoints of the test: one HTTP server, one
// path (and secret) per endpoint. It checks each signature and records
// every POST, duplicates included.
type hookReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	secrets map[string]string
	hits    []hookHit
	badSig  int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{secrets: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ep := strings.TrimPrefix(r.URL.Path, "/")
		h.mu.Lock()
		defer h.mu.Unlock()
		m := hmac.New(sha256.New, []byte(h.secrets[ep]))
		m.Write(body)
		if h.secrets[ep] == "" || r.Header.Get("X-Shelfsync-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			h.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.hits = append(h.hits, hookHit{endpoint: ep, event: r.Header.Get("X-Shelfsync-Event"), delivery: r.Header.Get("X-Shelfsync-Delivery"),
			attempt: r.Header.Get("X-Shelfsync-Attempt"), at: time.Now(), body: body})
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// register adds endpoint ep (a path of the receiver) through replica r,
// with a secret of its own set before any delivery can arrive; it returns
// the endpoint's id.
func (h *hookReceiver) register(t *testing.T, r *replica, ep string, body map[string]any) string {
	t.Helper()
	secret := fmt.Sprintf("replicas-%s-%d", ep, time.Now().UnixNano())
	h.mu.Lock()
	h.secrets[ep] = secret
	h.mu.Unlock()
	body["url"], body["secret"] = h.srv.URL+"/"+ep, secret
	var e struct{ ID, Secret string }
	require.Equal(t, http.StatusCreated, r.must(t, "POST", "/api/v1/webhooks", body, &e))
	require.Equal(t, secret, e.Secret)
	return e.ID
}

// received returns the hits of endpoint ep with event (empty: all), in
// arrival order.
func (h *hookReceiver) received(ep, event string) []hookHit {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookHit
	for _, x := range h.hits {
		if x.endpoint == ep && (event == "" || x.event == event) {
			out = append(out, x)
		}
	}
	return out
}

// hookKey names what a hit of the events endpoint carries: "alert {id}
// {status}" or "order.{event} {order id}".
func hookKey(x hookHit) string {
	switch x.event {
	case "alert":
		var a struct{ ID, Status string }
		if json.Unmarshal(x.body, &a) == nil {
			return "alert " + a.ID + " " + a.Status
		}
	case "conflict":
		var c struct {
			Event    string
			Conflict struct{ ID string }
		}
		if json.Unmarshal(x.body, &c) == nil {
			return c.Event + " " + c.Conflict.ID
		}
	case "order":
		var o struct {
			Event string
			Order struct{ ID string }
		}
		if json.Unmarshal(x.body, &o) == nil {
			return o.Event + " " + o.Order.ID
		}
	}
	return x.event + " ?"
}

// hookTally counts the hits of one endpoint per key: how many deliveries
// (X-Shelfsync-Delivery ids) carried each key, and how many hits repeated
// a delivery already received (the same delivery posted again).
type hookTally struct {
	hits       int
	byKey      map[string][]string // key → distinct delivery ids
	reposts    []hookHit           // hits of a delivery id already received
	firstAfter time.Time           // first hit after the kill
}

func (h *hookReceiver) tally(ep string, killAt time.Time) hookTally {
	tl := hookTally{byKey: map[string][]string{}}
	seen := map[string]bool{}
	for _, x := range h.received(ep, "") {
		tl.hits++
		if !killAt.IsZero() && x.at.After(killAt) && tl.firstAfter.IsZero() {
			tl.firstAfter = x.at
		}
		if x.event == "ping" {
			continue
		}
		if seen[x.delivery] {
			tl.reposts = append(tl.reposts, x)
			continue
		}
		seen[x.delivery] = true
		k := hookKey(x)
		tl.byKey[k] = append(tl.byKey[k], x.delivery)
	}
	return tl
}

// scanLedger is what a gateway's scans do to the ledger of wh: +qty per
// item received, −qty per item picked, the signed QTY of an adjustment,
// at the scanned location. Ops at a location the warehouse has not
// defined are quarantined by the server (the warehouse is
// location-managed): they are counted apart and change nothing.
func scanLedger(scans []string, defined map[string]bool) (effects map[string]int64, quarantined int) {
	effects = map[string]int64{}
	session, loc := "", ""
	qty := int64(1)
	for _, l := range scans {
		switch {
		case strings.HasPrefix(l, "CMD:"):
			if l != "CMD:DONE" {
				session, loc = l[4:], ""
				if session == "RECEIVE" {
					loc = "RECEIVING" // the dock's, unless a LOC: follows
				}
			}
			qty = 1
		case strings.HasPrefix(l, "LOC:"):
			loc = l[4:]
		case strings.HasPrefix(l, "QTY:"):
			qty, _ = strconv.ParseInt(strings.TrimPrefix(l[4:], "+"), 10, 64)
		case strings.HasPrefix(l, "SKU:"):
			d := qty
			switch session {
			case "PICK":
				d = -qty
			case "RECEIVE", "ADJUST":
			default:
				panic("scanLedger: session " + session)
			}
			if !defined[loc] {
				quarantined++
			} else {
				effects[loc+"/"+l[4:]] += d
			}
			qty = 1
		}
	}
	return effects, quarantined
}

// atsRow is a row of GET /api/v1/availability.
type atsRow struct {
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Sellable  int64  `json:"sellable"`
	Reserved  int64  `json:"reserved"`
	Safety    int64  `json:"safety_stock"`
	Available int64  `json:"available"`
}

// channelDef is a channel's allocation as the test set it.
type channelDef struct {
	name       string
	sharePct   float64
	warehouses []string
}

// wantOrder is an order as the test made it.
type wantOrder struct {
	wh, id, status string
	seq            uint64
	lines          map[string]int64 // sku → qty
}

// expectATS returns the availability the ledger and the open orders imply:
// per warehouse and sku, on-hand over every location, sellable over the
// sellable ones, reserved by the open orders (nothing is picked against
// an order in this test), no safety stock.
func expectATS(ledger map[string]map[string]int64, sellable map[string]map[string]bool, orders map[string]*wantOrder) []atsRow {
	rows := map[[2]string]*atsRow{}
	row := func(wh, sku string) *atsRow {
		k := [2]string{wh, sku}
		if rows[k] == nil {
			rows[k] = &atsRow{Warehouse: wh, SKU: sku}
		}
		return rows[k]
	}
	for wh, keys := range ledger {
		for k, q := range keys {
			loc, sku, _ := strings.Cut(k, "/")
			r := row(wh, sku)
			r.OnHand += q
			if sellable[wh][loc] {
				r.Sellable += q
			}
		}
	}
	for _, o := range orders {
		for sku, q := range o.lines {
			r := row(o.wh, sku)
			if o.status == "open" {
				r.Reserved += q
			}
		}
	}
	out := make([]atsRow, 0, len(rows))
	for _, r := range rows {
		r.Available = r.Sellable - r.Reserved - r.Safety
		out = append(out, *r)
	}
	sortATS(out)
	return out
}

func sortATS(rows []atsRow) {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Warehouse != rows[j].Warehouse {
			return rows[i].Warehouse < rows[j].Warehouse
		}
		return rows[i].SKU < rows[j].SKU
	})
}

// offer returns what a channel is offered per sku: ⌊Σ over the warehouses
// it sells from of max(0, ATS) × share⌋ (no caps in this test), for every
// sku of every warehouse.
func (ch channelDef) offer(ats []atsRow) map[string]int64 {
	pool := map[string]int64{}
	for _, a := range ats {
		sells := len(ch.warehouses) == 0
		for _, w := range ch.warehouses {
			sells = sells || w == a.Warehouse
		}
		if _, ok := pool[a.SKU]; !ok {
			pool[a.SKU] = 0
		}
		if sells && a.Available > 0 {
			pool[a.SKU] += a.Available
		}
	}
	out := map[string]int64{}
	for sku, p := range pool {
		out[sku] = int64(math.Floor(float64(p) * ch.sharePct / 100))
	}
	return out
}

// snapshot is the payload of the availability topic and webhook.
type snapshot struct {
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
	Items   []struct {
		SKU       string `json:"sku"`
		Available int64  `json:"available"`
	} `json:"items"`
}

func decodeSnapshot(b []byte) (snapshot, map[string]int64, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return s, nil, err
	}
	m := map[string]int64{}
	for _, it := range s.Items {
		m[it.SKU] = it.Available
	}
	return s, m, nil
}

// retained connects a new MQTT client and returns the retained message of
// topic (nil when none arrives within d).
func retained(t *testing.T, addr, topic string, d time.Duration) []byte {
	got := make(chan []byte, 1)
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("retained-%d", time.Now().UnixNano())).SetCleanSession(true)
	cl := paho.NewClient(opts)
	tok := cl.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "connect: %v", tok.Error())
	defer cl.Disconnect(100)
	tok = cl.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			select {
			case got <- append([]byte(nil), m.Payload()...):
			default:
			}
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "subscribe: %v", tok.Error())
	select {
	case b := <-got:
		return b
	case <-time.After(d):
		return nil
	}
}

// alertKey names an alert by what raised it.
func alertKey(a map[string]any) string {
	s := func(k string) string { v, _ := a[k].(string); return v }
	sku := s("sku")
	if sku == "" {
		sku = "-"
	}
	k := s("kind") + " " + s("warehouse") + " " + sku
	if ck := s("conflict_kind"); ck != "" {
		k += " " + ck
	}
	return k
}

// notifiedConflicts returns "conflict wh sku kind" of every conflict
// whose opening the alerts topic carried, sorted.
func notifiedConflicts(o *observer) []string {
	var out []string
	for _, m := range o.alertMsgs() {
		if m.Kind != "conflict" || m.Status != "opened" {
			continue
		}
		sku := m.SKU
		if sku == "" {
			sku = "-"
		}
		out = append(out, "conflict "+m.Warehouse+" "+sku+" "+m.ConflictKind)
	}
	sort.Strings(out)
	return out
}

// waitForState is waitFor that says, when it times out, what state was
// last seen.
func waitForState(t *testing.T, d time.Duration, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", d, what, state())
		}
		time.Sleep(25 * time.Millisecond)
	}
}
