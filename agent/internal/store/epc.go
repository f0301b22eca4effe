package store

import (
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Serialised units: where each EPC was last recorded, and what a
// location's last rfid sweep saw.

// EPCLocations returns where each serialised unit was last recorded.
func (s *Store) EPCLocations() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(mdEPC), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[strings.TrimPrefix(string(it.Item().Key()), mdEPC)] = string(v)
		}
		return nil
	})
	return out, err
}

// Known reports whether a serialised unit (EPC, upper-case hex) was ever
// recorded at this gateway.
func (s *Store) Known(epcHex string) (string, bool) {
	var loc string
	var ok bool
	_ = s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(mdEPC + epcHex))
		if err != nil {
			return nil
		}
		v, err := it.ValueCopy(nil)
		loc, ok = string(v), err == nil
		return nil
	})
	return loc, ok
}

// LastSweep returns the EPC set of a location's last rfid sweep.
func (s *Store) LastSweep(location string) ([]string, bool) {
	var set []string
	var ok bool
	_ = s.db.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getCBOR(txn, mdSweep+location, &set)
		return err
	})
	return set, ok
}

// GhostStock reports, per location with an rfid sweep, the serialised
// units recorded there that its last sweep did not see.
func (s *Store) GhostStock() (map[string][]string, error) {
	locs, err := s.EPCLocations()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	swept := map[string]map[string]bool{}
	for epc, loc := range locs {
		seen, ok := swept[loc]
		if !ok {
			set, has := s.LastSweep(loc)
			if !has {
				swept[loc] = nil
				continue
			}
			seen = map[string]bool{}
			for _, e := range set {
				seen[e] = true
			}
			swept[loc] = seen
		}
		if seen != nil && !seen[epc] {
			out[loc] = append(out[loc], epc)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out, nil
}
