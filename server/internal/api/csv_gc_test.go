package api

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// gcPercent reads the collector's target.
func gcPercent() int {
	v := debug.SetGCPercent(100)
	debug.SetGCPercent(v)
	return v
}

// TestImportsHoldTheCollectorTight: while imports apply rows the
// collector runs at importGCPercent; imports at once share it and the
// last restores the target it found; a lower target, or none (off), is
// left as it is.
func TestImportsHoldTheCollectorTight(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	debug.SetGCPercent(100)
	first := tightGC()
	require.Equal(t, importGCPercent, gcPercent())
	second := tightGC()
	first()
	require.Equal(t, importGCPercent, gcPercent(), "the second import still applies")
	second()
	require.Equal(t, 100, gcPercent(), "the last import restores the target")

	for _, v := range []int{10, -1} {
		debug.SetGCPercent(v)
		restore := tightGC()
		require.Equal(t, v, gcPercent())
		restore()
		require.Equal(t, v, gcPercent())
	}
}
