package webhooks

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEndpointOwnerWants: an endpoint bound to an owner receives only the
// events about its owner's data (and that owner's copies of availability);
// an endpoint bound to none receives every owner's events but not the
// owners' copies, which would repeat the full availability it gets.
func TestEndpointOwnerWants(t *testing.T) {
	acme := Endpoint{URL: "http://x", Events: []string{EventAll}, Owner: "acme"}
	all := Endpoint{URL: "http://x", Events: []string{EventAll}}
	for _, tc := range []struct {
		name      string
		ev        Event
		acme, all bool
	}{
		{"acme's order", Event{Type: EventOrder, Warehouse: "wh1", Owner: "acme"}, true, true},
		{"globex's order", Event{Type: EventOrder, Warehouse: "wh1", Owner: "globex"}, false, true},
		{"an order of no owner", Event{Type: EventOrder, Warehouse: "wh1"}, false, true},
		{"a gateway alert", Event{Type: EventAlert, Warehouse: "wh1"}, false, true},
		{"globex's conflict", Event{Type: EventConflict, Warehouse: "wh1", Owner: "globex"}, false, true},
		{"the full availability", Event{Type: EventAvailability, Channel: "web"}, false, true},
		{"acme's availability", Event{Type: EventAvailability, Channel: "web", Owner: "acme", OwnerOnly: true}, true, false},
		{"globex's availability", Event{Type: EventAvailability, Channel: "web", Owner: "globex", OwnerOnly: true}, false, false},
	} {
		require.Equal(t, tc.acme, acme.Wants(tc.ev), "acme's endpoint, %s", tc.name)
		require.Equal(t, tc.all, all.Wants(tc.ev), "the unbound endpoint, %s", tc.name)
	}
	bad := Endpoint{URL: "http://x", Owner: "a\x00b"}
	require.ErrorIs(t, bad.Validate(), ErrInvalid)
}
