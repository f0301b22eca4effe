package ledger

// MemStore is an in-memory Store, for tests and for views that are rebuilt
// at start.
type MemStore struct {
	Keys      map[Key]KeyState
	LocCounts map[[2]string]Order
	deltas    map[Key][]memDelta
}

type memDelta struct {
	ord Order
	qty int64
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{Keys: map[Key]KeyState{}, LocCounts: map[[2]string]Order{}, deltas: map[Key][]memDelta{}}
}

// GetKey implements Store.
func (m *MemStore) GetKey(k Key) (KeyState, bool, error) {
	s, ok := m.Keys[k]
	return s, ok, nil
}

// PutKey implements Store.
func (m *MemStore) PutKey(k Key, s KeyState) error { m.Keys[k] = s; return nil }

// GetLocCount implements Store.
func (m *MemStore) GetLocCount(wh, loc string) (Order, bool, error) {
	o, ok := m.LocCounts[[2]string{wh, loc}]
	return o, ok, nil
}

// PutLocCount implements Store.
func (m *MemStore) PutLocCount(wh, loc string, o Order) error {
	m.LocCounts[[2]string{wh, loc}] = o
	return nil
}

// KeysAt implements Store.
func (m *MemStore) KeysAt(wh, loc string) ([]Key, error) {
	var out []Key
	for k := range m.Keys {
		if k.WH == wh && k.Location == loc {
			out = append(out, k)
		}
	}
	return out, nil
}

// AddDelta implements Store.
func (m *MemStore) AddDelta(k Key, o Order, qty int64) error {
	m.deltas[k] = append(m.deltas[k], memDelta{o, qty})
	return nil
}

// SumAfter implements Store.
func (m *MemStore) SumAfter(k Key, o Order) (int64, error) {
	var s int64
	for _, d := range m.deltas[k] {
		if d.ord.Compare(o) > 0 {
			s += d.qty
		}
	}
	return s, nil
}

// OnHand returns every key's on-hand.
func (m *MemStore) OnHand() map[Key]int64 {
	out := make(map[Key]int64, len(m.Keys))
	for k, s := range m.Keys {
		out[k] = s.OnHand()
	}
	return out
}
