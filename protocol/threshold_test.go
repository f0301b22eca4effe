package protocol

import "testing"

// TestSuggestedOrder is the one reorder formula's table: the inventory
// position is on-hand + on-order; with max, fill it up to max; without,
// reorder_qty while it is at or below the point; never negative.
func TestSuggestedOrder(t *testing.T) {
	tests := []struct {
		name            string
		th              Threshold
		onHand, onOrder int64
		want            int64
	}{
		{"max fills the position", Threshold{ReorderPoint: 10, ReorderQty: 40, Max: 100}, 8, 20, 72},
		{"max, nothing on order", Threshold{ReorderPoint: 10, Max: 100}, 8, 0, 92},
		{"max already covered", Threshold{ReorderPoint: 10, Max: 100}, 8, 120, 0},
		{"negative on-hand counts", Threshold{ReorderPoint: 10, Max: 100}, -2, 0, 102},
		{"no max: reorder quantity", Threshold{ReorderPoint: 10, ReorderQty: 40}, 8, 0, 40},
		{"no max: on order lifts the position above the point", Threshold{ReorderPoint: 10, ReorderQty: 40}, 8, 40, 0},
		{"no max: position at the point", Threshold{ReorderPoint: 10, ReorderQty: 40}, 8, 2, 40},
		{"nothing set", Threshold{}, 0, 0, 0},
	}
	for _, tc := range tests {
		if got := tc.th.SuggestedOrder(tc.onHand, tc.onOrder); got != tc.want {
			t.Errorf("%s: SuggestedOrder(%d, %d) = %d, want %d", tc.name, tc.onHand, tc.onOrder, got, tc.want)
		}
	}
}
