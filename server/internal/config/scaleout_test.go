package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScaleOutValidate(t *testing.T) {
	const pg = "postgres://u:secret@db:5432/shelfsync"
	for _, tc := range []struct {
		name string
		args []string
		want string // substring of the error; "" = valid
	}{
		{"badger by default", nil, ""},
		{"badger by name", []string{"--store", "badger"}, ""},
		{"postgres", []string{"--store", pg}, ""},
		{"postgresql scheme", []string{"--store", "postgresql://db/x"}, ""},
		{"unknown store, password hidden", []string{"--store", "mysql://u:secret@db/x"}, `store: "mysql://u:***@db/x"`},
		{"replicas share a group", []string{"--store", pg, "--broker", "tcp://b:1883", "--share-group", "g"}, ""},
		{"share group needs external broker", []string{"--store", pg, "--share-group", "g"}, "share-group: needs an external broker"},
		{"share group needs postgres", []string{"--broker", "tcp://b:1883", "--share-group", "g"}, "share-group: replicas must share a PostgreSQL store"},
		{"share group is one level", []string{"--store", pg, "--broker", "tcp://b:1883", "--share-group", "a/b"}, "must not contain"},
		{"warehouse partition", []string{"--store", pg, "--broker", "tcp://b:1883", "--partition", "warehouse"}, ""},
		{"no partition", []string{"--store", pg, "--broker", "tcp://b:1883", "--partition", "none"}, ""},
		{"unknown partition", []string{"--store", pg, "--broker", "tcp://b:1883", "--partition", "gateway"}, `partition: "gateway" must be`},
		{"lease ttl floor", []string{"--store", pg, "--broker", "tcp://b:1883", "--lease-ttl", "100ms"}, "lease-ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.args...)
			require.NoError(t, err)
			err = c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

// The warehouse partition is the default for replicas, and only for them:
// a PostgreSQL store reached through an external broker without a shared
// subscription, or through clustered embedded brokers.
func TestPartitionWarehousesByDefault(t *testing.T) {
	const pg = "postgres://u:secret@db:5432/shelfsync"
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--store", pg, "--broker", "tcp://b:1883"}, true},
		{[]string{"--store", pg, "--broker", "tcp://b:1883", "--partition", "none"}, false},
		{[]string{"--store", pg, "--broker", "tcp://b:1883", "--share-group", "g"}, false},
		{[]string{"--store", pg}, false}, // embedded broker, alone: it hears only its own gateways
		{[]string{"--store", pg, "--cluster-listen", "127.0.0.1:6222", "--cluster-routes", "127.0.0.1:6222,127.0.0.1:6223"}, true},
		{[]string{"--store", pg, "--cluster-listen", "127.0.0.1:6222", "--cluster-routes", "127.0.0.1:6223", "--partition", "none"}, false},
		{[]string{"--broker", "tcp://b:1883"}, false}, // Badger: one server
	} {
		c, err := load(t, tc.args...)
		require.NoError(t, err)
		require.Equal(t, tc.want, c.PartitionWarehouses(), "%v", tc.args)
	}
}
