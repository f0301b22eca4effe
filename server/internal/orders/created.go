package orders

import (
	"context"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// CreatedSince returns when each order matching q (warehouse, channel,
// status; Limit and Offset are ignored) was created, for those created at
// or after sinceMS (Unix ms): one pass over the orders, none of their picks
// read — what the dashboard's orders-per-hour plot counts.
func (s *Service) CreatedSince(_ context.Context, q Query, sinceMS int64) ([]int64, error) {
	prefix := pfxOrder
	if q.Warehouse != "" {
		prefix += q.Warehouse + "\x00"
	}
	var out []int64
	err := s.st.View(func(tx store.Tx) error {
		out = nil
		return tx.Scan([]byte(prefix), store.ScanOptions{}, func(_, v []byte) error {
			var o Order
			if err := protocol.Unmarshal(v, &o); err != nil {
				return err
			}
			if o.CreatedMS >= sinceMS && (q.Channel == "" || o.Channel == q.Channel) && (q.Status == "" || o.Status == q.Status) && (q.Owner == "" || o.Owner == q.Owner) {
				out = append(out, o.CreatedMS)
			}
			return nil
		})
	})
	return out, err
}
