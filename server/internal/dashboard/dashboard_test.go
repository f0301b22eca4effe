package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHubFansOutAndDropsTheSlow(t *testing.T) {
	h := NewHub()
	h.Buffer = 2
	fast, stopFast := h.Subscribe()
	defer stopFast()
	slow, _ := h.Subscribe()
	for i := 0; i < 2; i++ {
		h.Publish("batch", map[string]int{"n": i})
		m := <-fast
		require.Equal(t, "batch", m.Type)
	}
	h.Publish("batch", 3) // slow has 2 queued: dropped
	<-fast
	n := 0
	for range slow {
		n++
	}
	require.Equal(t, 2, n, "a dropped subscriber's channel is closed after what it had")
	require.Equal(t, 1, h.Subscribers())
	h.Close()
	_, ok := <-fast
	require.False(t, ok, "Close ends every stream")
	late, _ := h.Subscribe()
	_, ok = <-late
	require.False(t, ok)
}

func TestHandlerServesTheEmbeddedPage(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for path, want := range map[string]string{"/dashboard/": "<title>shelfsync dashboard</title>", "/dashboard/app.js": "function loadStock", "/dashboard/style.css": ".cards",
		"/dashboard/common.js": "function chart", "/dashboard/pages.js": "async function loadOrders",
		"/dashboard/work.html": `<div class="view" data-view="receiving" hidden>`} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
		require.True(t, strings.Contains(string(b), want), path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	}
}
