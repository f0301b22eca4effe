package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// do sends a JSON (or raw, when body is a string) request to the server's
// API and decodes the answer into out; it returns the status code.
func (c *cluster) do(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r, ctype = strings.NewReader(b), "text/csv"
	default:
		raw, err := json.Marshal(b)
		require.NoError(c.t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+c.httpAddr+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", ctype)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(c.t, json.NewDecoder(resp.Body).Decode(out), "%s %s", method, path)
	}
	return resp.StatusCode
}

// mustDo is do that requires a 2xx answer.
func (c *cluster) mustDo(method, path string, body any, out any) {
	c.t.Helper()
	code := c.do(method, path, body, out)
	require.True(c.t, code >= 200 && code < 300, "%s %s: HTTP %d", method, path, code)
}

// importCSV posts a CSV import and returns its NDJSON progress lines.
func (c *cluster) importCSV(wh, kind, csv string) []map[string]any {
	c.t.Helper()
	resp, err := http.Post(fmt.Sprintf("http://%s/api/v1/masterdata/%s/%s/import", c.httpAddr, wh, kind), "text/csv", strings.NewReader(csv))
	require.NoError(c.t, err)
	defer resp.Body.Close()
	require.Equal(c.t, 200, resp.StatusCode)
	require.Equal(c.t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	var lines []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		require.NoError(c.t, json.Unmarshal(sc.Bytes(), &m))
		lines = append(lines, m)
	}
	return lines
}

// ledger returns the server's non-zero stock as "loc/sku[/lot]" → on-hand.
func (c *cluster) ledger(wh string) map[string]int64 {
	var b stockBody
	getJSON(c.t, "http://"+c.httpAddr+"/api/v1/stock?warehouse="+wh, &b)
	out := map[string]int64{}
	for _, it := range b.Items {
		if it.OnHand == 0 {
			continue
		}
		k := it.Location + "/" + it.SKU
		if it.Lot != "" {
			k += "/" + it.Lot
		}
		out[k] = it.OnHand
	}
	return out
}

type fullConflict struct {
	ID, Kind, Status, Location, SKU, Lot, Detail string
	Expected, Observed                           int64
	Holds                                        bool
}

// allConflicts lists every conflict of wh as "kind id" → conflict.
func (c *cluster) allConflicts(wh string) []fullConflict {
	var body struct{ Items []fullConflict }
	getJSON(c.t, fmt.Sprintf("http://%s/api/v1/conflicts?warehouse=%s", c.httpAddr, wh), &body)
	sort.Slice(body.Items, func(i, j int) bool { return body.Items[i].ID < body.Items[j].ID })
	return body.Items
}

// screenState is the gateway screen's JSON.
type screenState struct {
	Connected bool `json:"connected"`
	Outbox    uint64
	Devices   []struct {
		Name, Session, Expect, Suggest, Error string
		Recent                                []struct{ Raw, Verdict, Reason string }
	}
	Tasks []struct {
		ID, Kind, Location, SKU, Lot, Order string
		Qty                                 int64
	}
	POs     []struct{ ID string }
	Notices []struct{ ID, Kind, SKU, Ref string }
	Counts  map[string]int
}

func (g *gateway) screen() screenState {
	var st screenState
	resp, err := http.Get("http://" + g.HTTP + "/screen/api/state")
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

// reasons returns the reasons of the scanner's recent scans whose raw
// text contains raw.
func (g *gateway) reasons(raw string) []string {
	var out []string
	for _, d := range g.screen().Devices {
		for _, r := range d.Recent {
			if strings.Contains(r.Raw, raw) {
				out = append(out, r.Verdict+": "+r.Reason)
			}
		}
	}
	return out
}

// scanAll types lines and waits until each has been answered, so that
// the beeps line up with the scans.
func (g *gateway) scanAll(t *testing.T, lines ...string) map[string]int {
	t.Helper()
	before := g.beeps()
	n := before["good"] + before["bad"] + before["warn"]
	for _, l := range lines {
		g.scan(l)
		n++
		g.waitBeeps(n)
	}
	after := g.beeps()
	return map[string]int{"good": after["good"] - before["good"], "bad": after["bad"] - before["bad"], "warn": after["warn"] - before["warn"]}
}
