package orders

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// The model reads a location's sellability and a sku's safety stock once
// however often it recomputes, answers what Config's functions answer,
// and reads them again after Invalidate (a change of master data) — and
// when the view grows past its bound.
func TestMasterViewReadsOnceUntilInvalidated(t *testing.T) {
	reads := map[string]int{}
	safety := int64(4)
	s := New(Config{
		Sellable: func(wh, loc string) bool { reads["sell "+wh+"/"+loc]++; return loc != "DOCK" },
		Safety:   func(wh, sku string) int64 { reads["safe "+wh+"/"+sku]++; return safety },
	}, nil)
	pass := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		md := s.masterView()
		for _, loc := range []string{"A-1", "DOCK", "A-1"} {
			require.Equal(t, loc != "DOCK", md.sellable("w", loc), loc)
		}
		require.Equal(t, safety, md.safety("w", "MILK"))
	}
	for range 3 {
		pass()
	}
	require.Equal(t, map[string]int{"sell w/A-1": 1, "sell w/DOCK": 1, "safe w/MILK": 1}, reads, "one read each over three passes")

	safety = 7 // the master data changed: Invalidate follows its commit
	s.Invalidate()
	pass()
	require.Equal(t, map[string]int{"sell w/A-1": 2, "sell w/DOCK": 2, "safe w/MILK": 2}, reads, "read again after Invalidate")

	s.mu.Lock()
	md := s.masterView()
	for i := range maxMasterView + 1 {
		md.safe[whsku{"w", strconv.Itoa(i)}] = 0
	}
	require.NotSame(t, md, s.masterView(), "a view past its bound starts empty")
	s.mu.Unlock()
}
