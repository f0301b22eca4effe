package protocol

import "fmt"

// Verdict is the receiver's decision for a batch covering first..last given
// its watermark. Both directions use the same rule (docs/DESIGN.md,
// "Replication": the sequence rule).
type Verdict uint8

// Verdicts.
const (
	// Apply: apply the entries with seq > wm, then set wm = last.
	Apply Verdict = iota + 1
	// Duplicate: last ≤ wm; re-acknowledge wm, apply nothing.
	Duplicate
	// Gap: first > wm+1; acknowledge wm so the sender resends, apply nothing.
	Gap
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case Apply:
		return "apply"
	case Duplicate:
		return "duplicate"
	case Gap:
		return "gap"
	}
	return "invalid"
}

// Judge applies the sequence rule to a batch first..last at watermark wm.
func Judge(wm, first, last uint64) Verdict {
	switch {
	case last <= wm:
		return Duplicate
	case first > wm+1:
		return Gap
	default:
		return Apply
	}
}

// CheckBatch reports whether an op batch is internally consistent: first ≥ 1,
// first ≤ last, and the ops are exactly first..last in order.
func CheckBatch(b *OpBatch) error {
	if b.First == 0 || b.First > b.Last {
		return fmt.Errorf("batch range %d..%d is invalid", b.First, b.Last)
	}
	if uint64(len(b.Ops)) != b.Last-b.First+1 {
		return fmt.Errorf("batch %d..%d holds %d ops, want %d", b.First, b.Last, len(b.Ops), b.Last-b.First+1)
	}
	for i := range b.Ops {
		if want := b.First + uint64(i); b.Ops[i].Seq != want {
			return fmt.Errorf("batch %d..%d: op %d has seq %d, want %d", b.First, b.Last, i, b.Ops[i].Seq, want)
		}
	}
	return nil
}

// CheckDown reports whether a downstream batch is internally consistent:
// first ≤ last and item seqs strictly increase within first..last.
func CheckDown(b *DownBatch) error {
	if b.First == 0 || b.First > b.Last {
		return fmt.Errorf("down batch range %d..%d is invalid", b.First, b.Last)
	}
	prev := b.First - 1
	for i, it := range b.Items {
		if it.Seq <= prev || it.Seq > b.Last {
			return fmt.Errorf("down batch %d..%d: item %d has seq %d out of order or range", b.First, b.Last, i, it.Seq)
		}
		prev = it.Seq
	}
	return nil
}
