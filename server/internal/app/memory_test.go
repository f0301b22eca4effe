package app

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// The memory figure names each part once, the parts Go accounts for are
// positive, and Go's parts plus outside_go add up to the resident set.
func TestMemoryPartsAddUpToRSS(t *testing.T) {
	reg := prometheus.NewRegistry()
	registerMemoryMetrics(reg)
	keep := make([][]byte, 64)
	for i := range keep {
		keep[i] = make([]byte, 64<<10) // something live on the heap
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	parts := map[string]float64{}
	var sum float64
	for _, m := range mfs[0].GetMetric() {
		p := m.GetLabel()[0].GetValue()
		_, dup := parts[p]
		require.False(t, dup, "part %s twice", p)
		parts[p] = m.GetGauge().GetValue()
		sum += parts[p]
	}
	for _, p := range []string{"go_heap_objects", "go_stacks", "go_runtime"} {
		require.Positive(t, parts[p], p)
	}
	require.GreaterOrEqual(t, parts["go_heap_objects"], float64(64*64<<10), "the live slices are counted")
	rss, ok := residentBytes()
	require.True(t, ok)
	if parts["outside_go"] > 0 { // else Go has mapped more than is resident
		require.InDelta(t, rss, sum, 0.05*rss, "parts add up to the RSS read at nearly the same time")
	}
	_ = keep[0][0]
}
