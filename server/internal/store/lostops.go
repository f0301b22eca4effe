package store

import "context"

// LostOpsRecorder is implemented by the stores (their apply core): see
// apply.Engine.RecordLostOps and protocol SPEC.md §6.1.
type LostOpsRecorder interface {
	RecordLostOps(ctx context.Context, wh, gw string, first uint64) (Result, error)
}
