package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
)

// call sends a JSON request to the server's API, decodes the answer into
// out (when not nil) and returns the status code.
func (c *cluster) call(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(c.t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+c.httpAddr+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	if out != nil {
		b, _ := io.ReadAll(resp.Body)
		require.NoError(c.t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
	return resp.StatusCode
}

// availability is the payload of the availability topic and webhook.
type availability struct {
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
	Items   []struct {
		SKU       string `json:"sku"`
		Available int64  `json:"available"`
	} `json:"items"`
}

func (a availability) of(sku string) int64 {
	for _, it := range a.Items {
		if it.SKU == sku {
			return it.Available
		}
	}
	return 0
}

// mqttTap records what arrives on an MQTT topic filter.
type mqttTap struct {
	c    paho.Client
	mu   sync.Mutex
	msgs []tapped
}

type tapped struct {
	topic    string
	payload  []byte
	retained bool
}

func (c *cluster) tap(filter string) *mqttTap {
	c.t.Helper()
	tp := &mqttTap{}
	opts := paho.NewClientOptions().AddBroker("tcp://" + c.mqttAddr).SetClientID("e2e-tap-" + strconv.FormatInt(time.Now().UnixNano(), 10)).SetCleanSession(true)
	tp.c = paho.NewClient(opts)
	tok := tp.c.Connect()
	require.True(c.t, tok.WaitTimeout(10*time.Second))
	require.NoError(c.t, tok.Error())
	tok = tp.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		tp.mu.Lock()
		tp.msgs = append(tp.msgs, tapped{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
		tp.mu.Unlock()
	})
	require.True(c.t, tok.WaitTimeout(10*time.Second))
	require.NoError(c.t, tok.Error())
	c.t.Cleanup(func() { tp.c.Disconnect(100) })
	return tp
}

func (tp *mqttTap) all() []tapped {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]tapped(nil), tp.msgs...)
}

// hookReceiver is a webhook endpoint on a fixed address that can go down
// and come back. It checks each body's signature and keeps one copy per
// delivery id, in arrival order.
type hookReceiver struct {
	t      *testing.T
	addr   string
	secret string
	srv    *http.Server
	mu     sync.Mutex
	seen   map[string]bool
	bodies []hookBody
	badSig int
	dups   int
}

type hookBody struct {
	event, delivery string
	body            []byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	return &hookReceiver{t: t, addr: freePort(t), seen: map[string]bool{}}
}

func (h *hookReceiver) url() string { return "http://" + h.addr + "/hook" }

func (h *hookReceiver) start() {
	h.t.Helper()
	var ln net.Listener
	waitFor(h.t, 10*time.Second, "receiver port free", func() bool {
		var err error
		ln, err = net.Listen("tcp", h.addr)
		return err == nil
	})
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		m := hmac.New(sha256.New, []byte(h.secret))
		m.Write(body)
		if r.Header.Get("X-Shelfsync-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
			h.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("X-Shelfsync-Delivery")
		if h.seen[id] {
			h.dups++
		} else {
			h.seen[id] = true
			h.bodies = append(h.bodies, hookBody{r.Header.Get("X-Shelfsync-Event"), id, body})
		}
	})}
	go func() { _ = h.srv.Serve(ln) }()
	h.t.Cleanup(h.stop)
}

func (h *hookReceiver) stop() {
	if h.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.srv.Close()
		}
		h.srv = nil
	}
}

func (h *hookReceiver) received(event string) []hookBody {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookBody
	for _, b := range h.bodies {
		if event == "" || b.event == event {
			out = append(out, b)
		}
	}
	return out
}

// register adds the receiver as a webhook endpoint with a secret of its
// own (set before the first delivery can arrive).
func (h *hookReceiver) register(c *cluster, body map[string]any) string {
	h.mu.Lock()
	h.secret = "e2e-secret-" + time.Now().Format("150405.000000000")
	body["url"], body["secret"] = h.url(), h.secret
	h.mu.Unlock()
	var ep struct{ ID, Secret string }
	require.Equal(c.t, 201, c.call("POST", "/api/v1/webhooks", body, &ep))
	require.Equal(c.t, h.secret, ep.Secret)
	return ep.ID
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// pickScans are the scans of a pick of qty units of sku against an order,
// taking from the given bins in turn.
func pickScans(order, sku string, from map[string]int64) []string {
	out := []string{"CMD:PICK", "ORD:" + order}
	bins := make([]string, 0, len(from))
	for b := range from {
		bins = append(bins, b)
	}
	sort.Strings(bins)
	for _, b := range bins {
		if from[b] == 0 {
			continue
		}
		out = append(out, "LOC:"+b)
		for i := int64(0); i < from[b]; i++ {
			out = append(out, "SKU:"+sku)
		}
	}
	return append(out, "CMD:DONE")
}
