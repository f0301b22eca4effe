package masterdata

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/shelfsync/shelfsync/server/internal/csvcell"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

// CSV columns per kind, as Export writes them and Import reads them
// (Import takes the columns in any order; unknown columns are an error,
// missing optional ones are empty). GTINs are separated by spaces, ";" or
// "|". POs have one row per line; rows of the same id form one PO. A
// threshold's seasonal overrides are one cell: overrides separated by ";",
// each FROM..TO=REORDER_POINT/REORDER_QTY/MAX (dates YYYY-MM-DD, inclusive;
// the quantity and max may be empty), e.g.
// "2026-11-15..2026-12-24=50/100/200;2027-07-01..2027-08-31=20//".
var columns = map[Kind][]string{
	Items:      {"sku", "gtins", "description", "track_lot", "track_expiry", "velocity", "serialized", "owner", "min_shelf_days"},
	Locations:  {"code", "zone", "type", "sellable", "rank", "owner"},
	Zones:      {"zone", "gateway"},
	Thresholds: {"sku", "reorder_point", "reorder_qty", "max", "safety_stock", "seasonal"},
	POs:        {"id", "supplier", "dock", "status", "line", "sku", "lot", "qty"},
	ASNs:       {"sscc", "po", "sku", "lot", "expiry", "qty"},
}

// Columns returns the CSV columns Import reads and Export writes for kind,
// and those a header must have.
func Columns(kind Kind) (all, must []string) {
	return slices.Clone(columns[kind]), slices.Clone(required[kind])
}

var required = map[Kind][]string{
	Items: {"sku"}, Locations: {"code"}, Zones: {"zone", "gateway"},
	Thresholds: {"sku", "reorder_point"}, POs: {"id", "sku", "qty"}, ASNs: {"sscc", "sku", "qty"},
}

// Progress is one line of an import's progress stream.
type Progress struct {
	Rows     int    `json:"rows"`     // data rows read so far
	Imported int    `json:"imported"` // records written so far
	Errors   int    `json:"errors"`   // rows refused so far
	Row      int    `json:"row,omitempty"`
	Error    string `json:"error,omitempty"` // with Row: why that row (line of the file) was refused
	Done     bool   `json:"done,omitempty"`
}

// ImportBatch is how many records an import writes per transaction (and
// per progress line).
const ImportBatch = 200

// Import reads CSV records of a kind from r and writes them in batches,
// reporting progress after each batch and every refused row. Rows with
// errors are skipped, and so is every row of a PO one of whose rows is
// refused (nothing half-applied); a bad header is an error (nothing
// imported).
func (s *Service) Import(ctx context.Context, wh string, kind Kind, r io.Reader, progress func(Progress)) (Progress, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	head, err := cr.Read()
	if err != nil {
		return Progress{}, fmt.Errorf("%w: read CSV header: %v", ErrInvalid, err)
	}
	col := map[string]int{}
	known := map[string]bool{}
	for _, c := range columns[kind] {
		known[c] = true
	}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			return Progress{}, fmt.Errorf("%w: CSV column %q is not one of %s", ErrInvalid, h, strings.Join(columns[kind], ", "))
		}
		col[h] = i
	}
	for _, c := range required[kind] {
		if _, ok := col[c]; !ok {
			return Progress{}, fmt.Errorf("%w: CSV header lacks column %q (columns: %s)", ErrInvalid, c, strings.Join(columns[kind], ", "))
		}
	}
	var p Progress
	var batch []any
	var batchRows []int
	// Rows of a multi-row kind (POs, ASNs) with the same id form one
	// record, imported whole or not at all.
	groupCol := map[Kind]string{POs: "id", ASNs: "sscc"}[kind]
	var groups []any
	groupIdx, groupRow, groupBad := map[string]int{}, map[string]int{}, map[string]bool{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.putBatch(ctx, wh, kind, batch)
		if err != nil && !errors.Is(err, ErrInvalid) {
			return err
		}
		if err != nil { // one bad record (e.g. a GTIN of another sku): retry one by one
			for i, rec := range batch {
				if err := s.putBatch(ctx, wh, kind, []any{rec}); err != nil {
					if !errors.Is(err, ErrInvalid) {
						return err
					}
					p.Errors++
					progress(Progress{Rows: p.Rows, Imported: p.Imported, Errors: p.Errors, Row: batchRows[i], Error: err.Error()})
					continue
				}
				p.Imported++
			}
		} else {
			p.Imported += len(batch)
		}
		batch, batchRows = batch[:0], batchRows[:0]
		progress(p)
		return nil
	}
	for row := 2; ; row++ {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				p.Rows++
				p.Errors++
				progress(Progress{Rows: p.Rows, Imported: p.Imported, Errors: p.Errors, Row: row, Error: err.Error()})
				continue
			}
			return p, err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		p.Rows++
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return csvcell.Plain(strings.TrimSpace(rec[i]))
			}
			return ""
		}
		v, err := parseRow(kind, get)
		if err == nil {
			if it, ok := v.(protocol.Item); ok {
				err = validItem(&it)
				v = it
			}
		}
		if err != nil {
			p.Errors++
			progress(Progress{Rows: p.Rows, Imported: p.Imported, Errors: p.Errors, Row: row, Error: err.Error()})
			if groupCol != "" && get(groupCol) != "" {
				groupBad[get(groupCol)] = true
			}
			continue
		}
		if groupCol != "" {
			id := get(groupCol)
			if i, ok := groupIdx[id]; ok {
				groups[i] = mergeRows(groups[i], v)
			} else {
				groupIdx[id], groupRow[id] = len(groups), row
				groups = append(groups, v)
			}
			continue
		}
		batch = append(batch, v)
		batchRows = append(batchRows, row)
		if len(batch) >= ImportBatch {
			if err := flush(); err != nil {
				return p, err
			}
		}
	}
	for _, g := range groups {
		id := groupID(g)
		if groupBad[id] {
			p.Errors++
			progress(Progress{Rows: p.Rows, Imported: p.Imported, Errors: p.Errors, Row: groupRow[id],
				Error: fmt.Sprintf("%s %s not imported: another of its rows was refused (imported whole or not at all)", groupCol, id)})
			continue
		}
		batch = append(batch, g)
		batchRows = append(batchRows, groupRow[id])
		if len(batch) >= ImportBatch {
			if err := flush(); err != nil {
				return p, err
			}
		}
	}
	if err := flush(); err != nil {
		return p, err
	}
	p.Done = true
	progress(p)
	return p, nil
}

// mergeRows adds the row b to the multi-row record a (a PO's or an ASN's
// next line); header fields a later row gives replace earlier ones.
func mergeRows(a, b any) any {
	switch a := a.(type) {
	case protocol.PurchaseOrder:
		pl := b.(protocol.PurchaseOrder)
		a.Supplier, a.Dock, a.Status = or(pl.Supplier, a.Supplier), or(pl.Dock, a.Dock), or(pl.Status, a.Status)
		a.Lines = append(a.Lines, pl.Lines...)
		return a
	case protocol.ASN:
		al := b.(protocol.ASN)
		a.PO = or(al.PO, a.PO)
		a.Lines = append(a.Lines, al.Lines...)
		return a
	}
	return a
}

func groupID(v any) string {
	switch v := v.(type) {
	case protocol.PurchaseOrder:
		return v.ID
	case protocol.ASN:
		return v.SSCC
	}
	return ""
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Service) putBatch(ctx context.Context, wh string, kind Kind, batch []any) error {
	switch kind {
	case Items:
		return s.PutItems(ctx, wh, collect[protocol.Item](batch))
	case Locations:
		return s.PutLocations(ctx, wh, collect[protocol.Location](batch))
	case Zones:
		return s.PutZones(ctx, wh, collect[Zone](batch))
	case Thresholds:
		return s.PutThresholds(ctx, wh, collect[protocol.Threshold](batch))
	case POs:
		return s.PutPOs(ctx, wh, collect[protocol.PurchaseOrder](batch))
	case ASNs:
		return s.PutASNs(ctx, wh, collect[protocol.ASN](batch))
	}
	return fmt.Errorf("%w: kind %q", ErrInvalid, kind)
}

func collect[T any](batch []any) []T {
	out := make([]T, 0, len(batch))
	for _, v := range batch {
		out = append(out, v.(T))
	}
	return out
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "0", "false", "no", "n":
		return false, nil
	case "1", "true", "yes", "y":
		return true, nil
	}
	return false, fmt.Errorf("%w: %s %q: want true or false", ErrInvalid, name, v)
}

func parseInt(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not a whole number", ErrInvalid, name, v)
	}
	return n, nil
}

// parseRow turns one CSV row into a record of the kind.
func parseRow(kind Kind, get func(string) string) (any, error) {
	var errs []error
	b := func(name string) bool {
		v, err := parseBool(name, get(name))
		errs = append(errs, err)
		return v
	}
	n := func(name string) int64 {
		v, err := parseInt(name, get(name))
		errs = append(errs, err)
		return v
	}
	var out any
	switch kind {
	case Items:
		it := protocol.Item{SKU: get("sku"), Description: get("description"), Velocity: strings.ToLower(get("velocity")),
			TrackLot: b("track_lot"), TrackExpiry: b("track_expiry"), Serialized: b("serialized"), Owner: get("owner")}
		days := n("min_shelf_days")
		if days < 0 || days > 36500 {
			errs = append(errs, fmt.Errorf("%w: min_shelf_days %d: want 0..36500", ErrInvalid, days))
		}
		it.MinShelfDays = int(days)
		it.GTINs = strings.FieldsFunc(get("gtins"), func(r rune) bool { return r == ' ' || r == ';' || r == '|' || r == ',' })
		out = it
	case Locations:
		r := n("rank")
		if r < 0 || r > 1<<31 {
			errs = append(errs, fmt.Errorf("%w: rank %d out of range", ErrInvalid, r))
		}
		l := protocol.Location{Code: get("code"), Zone: get("zone"), Type: strings.ToLower(get("type")), Sellable: b("sellable"), Rank: uint32(r), Owner: get("owner")}
		errs = append(errs, validLocation(&l))
		out = l
	case Zones:
		z := Zone{Zone: get("zone"), Gateway: get("gateway")}
		errs = append(errs, validZone(&z))
		out = z
	case Thresholds:
		t := protocol.Threshold{SKU: get("sku"), ReorderPoint: n("reorder_point"), ReorderQty: n("reorder_qty"), Max: n("max"), SafetyStock: n("safety_stock")}
		var err error
		t.Seasonal, err = parseSeasonal(get("seasonal"))
		errs = append(errs, err)
		errs = append(errs, validThreshold(&t))
		out = t
	case POs:
		line := n("line")
		if line < 0 || line > 1<<31 {
			errs = append(errs, fmt.Errorf("%w: line %d out of range", ErrInvalid, line))
		}
		pl := protocol.POLine{Line: uint32(line), SKU: get("sku"), Lot: get("lot"), Qty: n("qty")}
		if err := field("id", get("id"), true); err != nil {
			errs = append(errs, err)
		}
		if err := field("sku", pl.SKU, true); err != nil {
			errs = append(errs, err)
		}
		if pl.Qty <= 0 {
			errs = append(errs, fmt.Errorf("%w: qty %d must be positive", ErrInvalid, pl.Qty))
		}
		out = protocol.PurchaseOrder{ID: get("id"), Supplier: get("supplier"), Dock: get("dock"), Status: strings.ToLower(get("status")), Lines: []protocol.POLine{pl}}
	case ASNs:
		a := protocol.ASN{SSCC: get("sscc"), PO: get("po"), Lines: []protocol.ASNLine{{SKU: get("sku"), Lot: get("lot"), Expiry: get("expiry"), Qty: n("qty")}}}
		errs = append(errs, validASN(&a))
		out = a
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrInvalid, kind)
	}
	return out, errors.Join(errs...)
}

// Export writes every record of a kind as CSV, with the header Import
// reads.
func (s *Service) Export(ctx context.Context, wh string, kind Kind, w io.Writer) error {
	return s.ExportOwner(ctx, wh, kind, "", w)
}

// ExportOwner is Export limited to the items of one owner ("": every
// item); the other kinds have no owner filter.
func (s *Service) ExportOwner(ctx context.Context, wh string, kind Kind, owner string, w io.Writer) error {
	v, err := s.List(ctx, wh, kind)
	if err != nil {
		return err
	}
	if its, ok := v.([]protocol.Item); ok && owner != "" {
		v = OwnedItems(its, owner)
	}
	cw := csvcell.NewWriter(w)
	if err := cw.Write(columns[kind]); err != nil {
		return err
	}
	bs := func(b bool) string { return strconv.FormatBool(b) }
	is := func(n int64) string { return strconv.FormatInt(n, 10) }
	switch kind {
	case Items:
		for _, it := range v.([]protocol.Item) {
			_ = cw.Write([]string{it.SKU, strings.Join(it.GTINs, " "), it.Description, bs(it.TrackLot), bs(it.TrackExpiry), it.Velocity, bs(it.Serialized), it.Owner, is(int64(it.MinShelfDays))})
		}
	case Locations:
		for _, l := range v.([]protocol.Location) {
			_ = cw.Write([]string{l.Code, l.Zone, l.Type, bs(l.Sellable), is(int64(l.Rank)), l.Owner})
		}
	case Zones:
		for _, z := range v.([]Zone) {
			_ = cw.Write([]string{z.Zone, z.Gateway})
		}
	case Thresholds:
		for _, t := range v.([]protocol.Threshold) {
			_ = cw.Write([]string{t.SKU, is(t.ReorderPoint), is(t.ReorderQty), is(t.Max), is(t.SafetyStock), formatSeasonal(t.Seasonal)})
		}
	case ASNs:
		for _, a := range v.([]protocol.ASN) {
			for _, l := range a.Lines {
				_ = cw.Write([]string{a.SSCC, a.PO, l.SKU, l.Lot, l.Expiry, is(l.Qty)})
			}
		}
	case POs:
		for _, p := range v.([]PO) {
			for _, l := range p.Lines {
				_ = cw.Write([]string{p.ID, p.Supplier, p.Dock, p.Status, is(int64(l.Line)), l.SKU, l.Lot, is(l.Qty)})
			}
		}
	}
	return cw.Flush()
}

// parseSeasonal reads a seasonal cell (see columns).
func parseSeasonal(cell string) ([]protocol.SeasonalThreshold, error) {
	var out []protocol.SeasonalThreshold
	for _, part := range strings.Split(cell, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		dates, figs, ok := strings.Cut(part, "=")
		from, to, ok2 := strings.Cut(dates, "..")
		nums := strings.Split(figs, "/")
		if !ok || !ok2 || len(nums) != 3 {
			return nil, fmt.Errorf("%w: seasonal %q: want FROM..TO=REORDER_POINT/REORDER_QTY/MAX, overrides separated by ;", ErrInvalid, part)
		}
		s := protocol.SeasonalThreshold{From: strings.TrimSpace(from), To: strings.TrimSpace(to)}
		var errs []error
		for i, dst := range []*int64{&s.ReorderPoint, &s.ReorderQty, &s.Max} {
			v, err := parseInt([]string{"seasonal reorder_point", "seasonal reorder_qty", "seasonal max"}[i], strings.TrimSpace(nums[i]))
			errs = append(errs, err)
			*dst = v
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// formatSeasonal writes a seasonal cell (see columns).
func formatSeasonal(ss []protocol.SeasonalThreshold) string {
	parts := make([]string, 0, len(ss))
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s..%s=%d/%d/%d", s.From, s.To, s.ReorderPoint, s.ReorderQty, s.Max))
	}
	return strings.Join(parts, ";")
}

// OwnedItems returns the items of one owner, in order.
func OwnedItems(its []protocol.Item, owner string) []protocol.Item {
	out := []protocol.Item{}
	for _, it := range its {
		if it.Owner == owner {
			out = append(out, it)
		}
	}
	return out
}
