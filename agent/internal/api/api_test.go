package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// TestOpsListsHeldOps: GET /api/v1/ops lists the ops the gateway holds,
// acknowledged (retained) or not, with the device that committed each, from
// the seq asked; bad parameters are a 400.
func TestOpsListsHeldOps(t *testing.T) {
	s, err := store.Open(store.Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	for i, dev := range []string{"s0", "s1", "s0"} {
		_, err := s.Commit(ctx, &store.Commit{Device: dev, KeepSession: true,
			Ops: []protocol.Op{{Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: int64(i + 1), Device: dev}}})
		require.NoError(t, err)
	}
	_, err = s.Ack(1, "e1")
	require.NoError(t, err)
	h := Handler(Deps{Store: s})

	get := func(q string) (int, Ops) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/ops"+q, nil))
		var body Ops
		if rec.Code == http.StatusOK {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		}
		return rec.Code, body
	}
	code, all := get("")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, uint64(3), all.LastSeq)
	require.Len(t, all.Items, 3)
	it := all.Items[0]
	require.Equal(t, OpItem{Seq: 1, HLC: it.HLC, Device: "s0", Kind: protocol.OpReceive.String(), Location: "L", SKU: "S", Qty: 1, Acked: true}, it)
	require.NotZero(t, it.HLC)
	require.Equal(t, []string{"s0", "s1", "s0"}, []string{all.Items[0].Device, all.Items[1].Device, all.Items[2].Device})
	require.False(t, all.Items[2].Acked)

	code, tail := get("?from=2&limit=1")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, tail.Items, 1)
	require.Equal(t, uint64(2), tail.Items[0].Seq)

	for _, q := range []string{"?from=x", "?limit=0", "?limit=10001"} {
		code, _ := get(q)
		require.Equal(t, http.StatusBadRequest, code, q)
	}
}
