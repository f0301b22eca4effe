package badger_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/storetest"
)

// TestBadgerContract runs the backend contract against the Badger store.
func TestBadgerContract(t *testing.T) {
	var mu sync.Mutex
	dirs := map[store.Store]string{}
	openDir := func(t *testing.T, dir string) store.Store {
		s, err := badger.Open(badger.Options{Dir: dir})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		mu.Lock()
		dirs[s] = dir
		mu.Unlock()
		return s
	}
	storetest.Run(t, func(t *testing.T) store.Store { return openDir(t, t.TempDir()) },
		storetest.WithReopen(func(t *testing.T, s store.Store) store.Store {
			mu.Lock()
			dir := dirs[s]
			mu.Unlock()
			require.NoError(t, s.Close())
			return openDir(t, dir)
		}),
		storetest.WithOpLog(func(t require.TestingT, s store.Store, wh, gw string, seq uint64) []byte {
			return badger.OpLogValue(t, s.(*badger.Store), wh, gw, seq)
		}))
}
