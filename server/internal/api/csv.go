package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/server/internal/csvcell"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// CSV: the stock snapshot (export) and the import of a stock snapshot as
// counts (the initial load of a warehouse). Imports run in the background
// and report their progress at /api/v1/imports/{id}; other importers
// (master data) may register with the same tracker through StartImport.

// The columns of a stock import: those it requires and every column it
// reads (others are ignored).
var (
	stockImportRequired = []string{"warehouse", "location", "sku", "qty"}
	stockImportColumns  = append(slices.Clone(stockImportRequired), "lot", "expiry")
)

// ImportJob is the progress of one import.
type ImportJob struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"` // running, done, failed
	// Phase is "checking" while every row is checked against the
	// scanner's rules, then "applying" (stock imports apply nothing
	// unless every row passes).
	Phase      string        `json:"phase,omitempty"`
	Total      int           `json:"total"`
	Checked    int           `json:"checked"`
	Done       int           `json:"done"`
	Failed     int           `json:"failed"`
	Message    string        `json:"message,omitempty"` // why a failed import applied nothing
	Errors     []ImportError `json:"errors"`
	StartedMS  int64         `json:"started_ms"`
	FinishedMS int64         `json:"finished_ms,omitempty"`
}

// ImportError is a row an import could not take.
type ImportError struct {
	Row   int    `json:"row"` // 1-based, the header is row 1
	Error string `json:"error"`
}

// maxImportErrors bounds the errors a job keeps.
const maxImportErrors = 100

// imports tracks the jobs of this process (the last 50).
type imports struct {
	mu   sync.Mutex
	n    int
	jobs []*ImportJob
}

var importTracker imports

// Progress is how an import reports each row.
type Progress func(row int, err error)

// ImportReport is what an import's work reports to its job: each row
// checked, each row applied, and a refusal that ends the job with nothing
// applied.
type ImportReport struct {
	Checked Progress
	Applied Progress
	// Refuse fails the job with msg (nothing was applied).
	Refuse func(msg string)
}

// StartImport runs work in the background as a tracked import of kind with
// total rows, and returns the job's first view.
func StartImport(kind string, total int, work func(ctx context.Context, r ImportReport)) ImportJob {
	t := &importTracker
	t.mu.Lock()
	t.n++
	j := &ImportJob{ID: fmt.Sprintf("%s-%d-%d", kind, time.Now().Unix(), t.n), Kind: kind, Status: "running", Total: total, StartedMS: time.Now().UnixMilli(), Errors: []ImportError{}}
	t.jobs = append(t.jobs, j)
	if len(t.jobs) > 50 {
		t.jobs = t.jobs[len(t.jobs)-50:]
	}
	first := *j
	t.mu.Unlock()
	row := func(counter *int, phase string) Progress {
		return func(row int, err error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			j.Phase = phase
			*counter++
			if err != nil {
				j.Failed++
				if len(j.Errors) < maxImportErrors {
					j.Errors = append(j.Errors, ImportError{Row: row, Error: err.Error()})
				}
			}
		}
	}
	refused := false
	rep := ImportReport{Checked: row(&j.Checked, "checking"), Applied: row(&j.Done, "applying"), Refuse: func(msg string) {
		t.mu.Lock()
		defer t.mu.Unlock()
		refused, j.Message = true, msg
	}}
	go func() {
		work(context.Background(), rep)
		t.mu.Lock()
		j.Status, j.FinishedMS = "done", time.Now().UnixMilli()
		if refused || j.Failed > 0 && j.Failed == j.Total {
			j.Status = "failed"
		}
		t.mu.Unlock()
	}()
	return first
}

func (t *imports) get(id string) (ImportJob, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.jobs {
		if j.ID == id {
			out := *j
			out.Errors = append([]ImportError(nil), j.Errors...)
			return out, true
		}
	}
	return ImportJob{}, false
}

func (t *imports) list() []ImportJob {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ImportJob, 0, len(t.jobs))
	for i := len(t.jobs) - 1; i >= 0; i-- {
		j := *t.jobs[i]
		j.Errors = nil
		out = append(out, j)
	}
	return out
}

// csvRows reads a CSV with a header row one record at a time, keyed by
// lower-case column name, checking first that the required columns are
// present. next returns each record with its 1-based row number (the
// header is row 1), a per-row error for a malformed line (the reading goes
// on), and io.EOF at the end. The record's map is the same for every
// row (a 200 MB file is millions of rows): it holds until the next call.
func csvRows(r io.Reader, required ...string) (next func() (int, map[string]string, error), err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read the header row: %w", err)
	}
	cols := make([]string, len(head))
	have := map[string]bool{}
	for i, h := range head {
		cols[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		have[cols[i]] = true
	}
	var missing []string
	for _, c := range required {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the header row lacks column(s) %s (it has %s)", strings.Join(missing, ", "), strings.Join(cols, ", "))
	}
	row := 1
	m := make(map[string]string, len(cols))
	return func() (int, map[string]string, error) {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return row, nil, io.EOF
		}
		row, _ = cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return pe.StartLine, nil, err
			}
			return row, nil, err
		}
		clear(m)
		for i, v := range rec {
			if i < len(cols) {
				m[cols[i]] = csvcell.Plain(strings.TrimSpace(v))
			}
		}
		return row, m, nil
	}, nil
}

func (h *Handler) registerCSV() {
	h.handle("GET /api/v1/stock/snapshot.csv", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		owner, ok := ownerScope(w, r, q.Get("owner"))
		if !ok {
			return
		}
		rows, err := h.d.Store.Stock(r.Context(), store.StockQuery{Warehouse: q.Get("warehouse"), Location: q.Get("location"), SKU: q.Get("sku"), Lot: q.Get("lot"), Owner: owner})
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		sort.Slice(rows, func(i, j int) bool {
			a, b := rows[i], rows[j]
			return ledger.CompareKeys(a.Key(), b.Key()) < 0
		})
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="stock-snapshot.csv"`)
		cw := csvcell.NewWriter(w)
		_ = cw.Write([]string{"warehouse", "location", "sku", "lot", "on_hand", "owner", "status"})
		for _, s := range rows {
			_ = cw.Write([]string{s.Warehouse, s.Location, s.SKU, s.Lot, strconv.FormatInt(s.OnHand, 10), s.Owner, s.Status.String()})
		}
		cw.Flush()
	})
	h.handle("POST /api/v1/imports/stock", func(w http.ResponseWriter, r *http.Request) {
		a := h.d.Store
		f, err := h.spool(w, r)
		if err != nil {
			writeError(w, bodyStatus(err), "stock CSV: "+err.Error())
			return
		}
		total, err := countRows(f)
		if err == nil {
			_, err = csvRows(f, stockImportRequired...)
		}
		if err != nil {
			closeSpool(f)
			writeError(w, http.StatusBadRequest, "stock CSV: "+err.Error())
			return
		}
		by := r.URL.Query().Get("by")
		job := StartImport("stock", total, func(ctx context.Context, rep ImportReport) {
			defer closeSpool(f)
			// Two passes over the spooled file, one row in memory at a
			// time: every row is checked against the scanner's rules
			// first, and nothing is applied unless all pass.
			if bad := h.checkStockRows(ctx, f, rep.Checked); bad > 0 {
				rep.Refuse(fmt.Sprintf("%d row(s) break the scanner's rules (listed in errors): nothing was applied; fix them and import the file again", bad))
				return
			}
			next, err := rewindRows(f)
			if err != nil {
				rep.Refuse("rewind the upload: " + err.Error())
				return
			}
			defer tightGC()()
			// Then rows are read one at a time and applied in chunks of
			// ImportChunk, one transaction each: memory stays flat in the
			// file's size, a chunk is applied whole or not at all, and
			// every row gets its own report.
			chunk := make([]stockRow, 0, ImportChunk)
			flush := func() {
				if len(chunk) > 0 {
					h.importStockChunk(ctx, a, chunk, rep.Applied)
					chunk = chunk[:0]
				}
			}
			for {
				row, rec, err := next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err == nil {
					var r stockRow
					if r, err = h.stockRowOp(row, rec, by); err == nil {
						chunk = append(chunk, r)
						if len(chunk) == ImportChunk {
							flush()
						}
						continue
					}
				}
				rep.Applied(row, err)
			}
			flush()
		})
		writeJSON(w, http.StatusAccepted, job)
	})
	h.handle("GET /api/v1/imports", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"items": importTracker.list()})
	})
	h.handle("GET /api/v1/imports/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, ok := importTracker.get(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "no such import (the server keeps the last 50 of this run)")
			return
		}
		writeJSON(w, http.StatusOK, j)
	})
}

// importGCPercent is the garbage collector's target (GOGC) while a stock
// import applies rows. Applying allocates fast — store transactions,
// Badger's table builders — while the live heap stays small; at Go's
// default of 100 the heap grows to twice the live set between
// collections, which was most of an import's memory over the idle
// server. At 25 it stays within a quarter of it, for more frequent
// collections during the import.
const importGCPercent = 25

// gcTight counts the imports applying, which hold the collector at
// importGCPercent.
var gcTight struct {
	mu   sync.Mutex
	n    int
	prev int
}

// tightGC sets the collector's target to importGCPercent (unless it is
// lower already or off) until the function it returns is called; imports
// running at once share it, and the last one restores the target.
func tightGC() (restore func()) {
	g := &gcTight
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.prev = debug.SetGCPercent(importGCPercent)
		if g.prev < importGCPercent { // lower already, or off (GOGC=off with a memory limit)
			debug.SetGCPercent(g.prev)
		}
	}
	g.n++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.n--; g.n == 0 {
			debug.SetGCPercent(g.prev)
		}
	}
}

// ImportChunk is how many rows of a stock import are applied per store
// transaction.
const ImportChunk = 256

// stockRow is a row of a stock CSV as the op it imports.
type stockRow struct {
	row int // line of the file
	wh  string
	op  protocol.Op
}

func rewindRows(f *os.File) (func() (int, map[string]string, error), error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return csvRows(f, stockImportRequired...)
}

// checkStockRows checks every row of a stock import: its format, and the
// rules the scanner applies (masterdata.StockRules) — an unknown bin, a
// lot-tracked item without a lot, an expiry-tracked item without an
// expiry, an item of one owner at another owner's location. It reports
// each row and returns how many failed.
func (h *Handler) checkStockRows(ctx context.Context, f *os.File, report Progress) int {
	next, err := rewindRows(f)
	if err != nil {
		report(1, err)
		return 1
	}
	rules := map[string]*masterdata.StockRules{} // per warehouse, loaded once
	bad := 0
	for {
		row, rec, err := next()
		if errors.Is(err, io.EOF) {
			return bad
		}
		if err == nil {
			_, _, err = parseStockRow(rec)
		}
		if err == nil && h.md != nil {
			wh := rec["warehouse"]
			if rules[wh] == nil {
				if rules[wh], err = h.md.StockRules(ctx, wh); err != nil {
					rules[wh] = nil
				}
			}
			if err == nil {
				err = rules[wh].Location(rec["location"])
			}
			if err == nil {
				err = rules[wh].Line(rec["sku"], rec["lot"], rec["expiry"])
			}
			if err == nil {
				err = rules[wh].Owner(rec["location"], rec["sku"])
			}
		}
		if err != nil {
			bad++
		}
		report(row, err)
	}
}

// parseStockRow checks the format of a stock import row and returns its
// warehouse and quantity.
func parseStockRow(rec map[string]string) (string, int64, error) {
	wh := rec["warehouse"]
	if err := protocol.ValidateID(wh); err != nil {
		return "", 0, fmt.Errorf("warehouse: %w", err)
	}
	qty, err := strconv.ParseInt(rec["qty"], 10, 64)
	if err != nil || qty < 0 || qty > protocol.MaxOpQty {
		return "", 0, fmt.Errorf("qty %q must be an integer 0..%d", rec["qty"], protocol.MaxOpQty)
	}
	return wh, qty, nil
}

// stockRowOp makes the server-origin count that sets one key's on-hand
// from a row of a stock CSV (with the lot's expiry when the row gives one).
func (h *Handler) stockRowOp(row int, rec map[string]string, by string) (stockRow, error) {
	wh, qty, err := parseStockRow(rec)
	if err != nil {
		return stockRow{}, err
	}
	// The sku and lot are copied out of the CSV record: the server's
	// models keep them, and a field of the record would keep its whole
	// line alive.
	return stockRow{row: row, wh: wh, op: protocol.Op{HLC: h.now(), Kind: protocol.OpCount, Scope: protocol.ScopeKey,
		Location: rec["location"], SKU: strings.Clone(rec["sku"]), Lot: strings.Clone(rec["lot"]), Expiry: rec["expiry"], Qty: qty, Reason: "IMPORT", Operator: by}}, nil
}

// openingBalance shapes an import's count: a key the records do not know
// yet gets an opening balance (an adjust, no variance to review; nothing
// for qty 0); a known key is counted, and a difference from the records
// is a variance like any count's.
func openingBalance(op *protocol.Op, known bool) bool {
	if known {
		return true
	}
	op.Kind, op.Scope = protocol.OpAdjust, 0
	return op.Qty != 0
}

// importStockChunk applies a chunk of rows, one transaction per run of
// rows of one warehouse, and reports every row: its own refusal, or the
// transaction's error for every row of a run that was not applied.
func (h *Handler) importStockChunk(ctx context.Context, a store.Actions, chunk []stockRow, report Progress) {
	ops := make([]protocol.Op, 0, len(chunk))
	for start := 0; start < len(chunk); {
		wh, end := chunk[start].wh, start+1
		for end < len(chunk) && chunk[end].wh == wh {
			end++
		}
		ops = ops[:0]
		for _, r := range chunk[start:end] {
			ops = append(ops, r.op)
		}
		out, res, err := a.IssueOps(ctx, wh, ops, openingBalance)
		for i, r := range chunk[start:end] {
			if err != nil {
				report(r.row, fmt.Errorf("not imported (rows %d..%d are applied together and failed): %w", chunk[start].row, chunk[end-1].row, err))
			} else {
				report(r.row, out[i].Err)
			}
		}
		if err == nil {
			h.changed(wh, res)
		}
		start = end
	}
}

// countRows counts the data rows of a spooled CSV (every non-blank record
// after the header, malformed ones included: each gets its report) and
// rewinds it. It scans bytes, allocating nothing per row: parsing a 200 MB
// file into strings only to count them filled the heap to Badger's
// memtable-sized GC goal.
func countRows(f *os.File) (int, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	n, inQuote, data := 0, false, false
	for {
		chunk, err := br.ReadSlice('\n')
		for _, c := range chunk {
			switch {
			case c == '"':
				inQuote, data = !inQuote, true
			case c == '\n' && !inQuote:
				if data {
					n++
				}
				data = false
			case c != '\r':
				data = true
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return 0, err
		}
	}
	if data {
		n++
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return max(n-1, 0), nil
}
