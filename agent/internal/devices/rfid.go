package devices

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/drivers/epc"
	"github.com/shelfsync/shelfsync/drivers/rfid"
	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/drivers/serialport"
	"github.com/shelfsync/shelfsync/protocol"
)

// RFID reader roles.
const (
	// RolePortal: a reader at a dock door. Each EPC it reads that this
	// gateway has never recorded is received once at its location, against
	// the open purchase order of that dock when there is one.
	RolePortal = "portal"
	// RoleShelf: a reader covering one location. Its reads are gathered in
	// sweeps; when a sweep's EPC set differs from the last one recorded
	// (and the next sweep confirms it) it commits an rfid-sweep count.
	RoleShelf = "shelf"
)

// RFIDConfig is an rfid device spec, parsed.
type RFIDConfig struct {
	Name, Selector string
	Reader         rfid.Config
	Role, Location string
	Baud           int
	Window         time.Duration // read de-duplication window
	Sweep          time.Duration // shelf sweep period
}

// RFIDConfig parses an rfid spec's options.
func (sp Spec) RFIDConfig() (RFIDConfig, error) {
	c := RFIDConfig{Name: sp.Name, Selector: sp.Selector, Reader: rfid.Config{Protocol: rfid.Protocol(sp.Options["protocol"])},
		Role: sp.Options["role"], Location: sp.Options["location"], Window: 500 * time.Millisecond, Sweep: 2 * time.Second}
	if err := c.Reader.Validate(); err != nil {
		return c, fmt.Errorf("device %s: protocol=%q: want protocol=uhf18 or protocol=mercury", sp.Name, sp.Options["protocol"])
	}
	if c.Role != RolePortal && c.Role != RoleShelf {
		return c, fmt.Errorf("device %s: role=%q: want role=portal or role=shelf", sp.Name, c.Role)
	}
	if c.Location == "" || len(c.Location) > protocol.MaxFieldLen {
		return c, fmt.Errorf("device %s: location= is required (the dock of a portal, the location a shelf reader covers)", sp.Name)
	}
	for k, dst := range map[string]*time.Duration{"window": &c.Window, "sweep": &c.Sweep} {
		if v, ok := sp.Options[k]; ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return c, fmt.Errorf("device %s: %s=%q is not a positive duration (e.g. 500ms)", sp.Name, k, v)
			}
			*dst = d
		}
	}
	if c.Sweep < 2*c.Window {
		return c, fmt.Errorf("device %s: sweep=%s must be at least twice window=%s", sp.Name, c.Sweep, c.Window)
	}
	if v, ok := sp.Options["baud"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("device %s: baud %q is not a number", sp.Name, v)
		}
		c.Baud = n
	}
	if v, ok := sp.Options["address"]; ok {
		n, err := strconv.ParseUint(v, 0, 8)
		if err != nil {
			return c, fmt.Errorf("device %s: address %q: want 0-255", sp.Name, v)
		}
		c.Reader.Address = byte(n)
	}
	if _, err := serialport.ParseSelector(c.Selector); err != nil {
		return c, fmt.Errorf("device %s: %w", sp.Name, err)
	}
	return c, nil
}

// RFIDInfo is an RFID reader's state for the status API and the screen.
type RFIDInfo struct {
	Protocol string   `json:"protocol"`
	Role     string   `json:"role"`
	Location string   `json:"location"`
	Seen     int      `json:"seen"`               // unique EPCs in the last sweep (shelf)
	Received uint64   `json:"received,omitempty"` // units received (portal)
	Sweeps   uint64   `json:"sweeps,omitempty"`   // rfid-sweep counts committed (shelf)
	Ghosts   []string `json:"ghosts,omitempty"`   // serialised units recorded here, not seen by the last sweep
}

// rfidDev runs one RFID reader.
type rfidDev struct {
	cfg RFIDConfig
	m   *Manager

	connected atomic.Bool
	reads     atomic.Uint64
	received  atomic.Uint64
	sweeps    atomic.Uint64
	seen      atomic.Int64

	mu        sync.Mutex
	path      string
	candidate []string // the last sweep's set, waiting for confirmation
}

func (r *rfidDev) info() DeviceInfo {
	r.mu.Lock()
	path := r.path
	r.mu.Unlock()
	ri := &RFIDInfo{Protocol: string(r.cfg.Reader.Protocol), Role: r.cfg.Role, Location: r.cfg.Location,
		Seen: int(r.seen.Load()), Received: r.received.Load(), Sweeps: r.sweeps.Load()}
	if r.cfg.Role == RoleShelf {
		if g, err := r.m.st.GhostStock(); err == nil {
			ri.Ghosts = g[r.cfg.Location]
		}
	}
	return DeviceInfo{Name: r.cfg.Name, Path: path, Connected: r.connected.Load(), Reads: r.reads.Load(), Kind: "rfid", Location: r.cfg.Location, RFID: ri, Recent: []ScanLog{}}
}

// run reads the reader until ctx is done, reopening it after failures
// with jittered exponential backoff.
func (r *rfidDev) run(ctx context.Context) {
	sel, _ := serialport.ParseSelector(r.cfg.Selector) // checked by RFIDConfig
	attempt := 0
	for ctx.Err() == nil {
		opened := time.Now()
		err := r.session(ctx, sel)
		if ctx.Err() != nil {
			return
		}
		if time.Since(opened) > 5*time.Second {
			attempt = 0
		}
		wait := min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
		wait -= time.Duration(rand.Int64N(int64(wait) / 2))
		if attempt == 0 {
			r.m.log.Warn("rfid reader unavailable", attrDevice, r.cfg.Name, "err", err, "backoff", wait)
		}
		attempt++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (r *rfidDev) session(ctx context.Context, sel serialport.Selector) error {
	path, err := sel.Resolve()
	if err != nil {
		return err
	}
	port, err := serialport.Open(path, r.cfg.Baud)
	if err != nil {
		return err
	}
	defer port.Close()
	rc := r.cfg.Reader
	rc.Logger = r.m.log.With(attrDevice, r.cfg.Name)
	rd, err := rfid.New(port, rc)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.path = path
	r.mu.Unlock()
	r.connected.Store(true)
	defer r.connected.Store(false)
	r.m.log.Info("rfid reader connected", attrDevice, r.cfg.Name, "path", path, "role", r.cfg.Role, "location", r.cfg.Location)
	if r.cfg.Role == RolePortal {
		return rd.RunDedup(ctx, r.cfg.Window, func(tr rfid.TagRead) {
			r.reads.Add(1)
			r.portalRead(ctx, tr.EPC)
		})
	}
	return r.runShelf(ctx, rd)
}

// runShelf gathers reads into sweeps of cfg.Sweep; a sweep counts only
// when the reader answered during it (a silent reader is not an empty
// shelf).
func (r *rfidDev) runShelf(ctx context.Context, rd *rfid.Reader) error {
	var mu sync.Mutex
	cur := map[string]bool{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.Sweep)
		defer t.Stop()
		frames := rd.Stats().Frames
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			set := make([]string, 0, len(cur))
			for e := range cur {
				set = append(set, e)
			}
			cur = map[string]bool{}
			mu.Unlock()
			f := rd.Stats().Frames
			if f == frames {
				continue // no answer from the reader during the sweep
			}
			frames = f
			sort.Strings(set)
			r.sweepDone(ctx, set)
		}
	}()
	err := rd.RunDedup(ctx, r.cfg.Window, func(tr rfid.TagRead) {
		r.reads.Add(1)
		mu.Lock()
		cur[strings.ToUpper(hex.EncodeToString(tr.EPC))] = true
		mu.Unlock()
	})
	cancel()
	wg.Wait()
	return err
}

// itemOf maps an EPC to its sku: SGTIN EPCs through the catalog (the
// GTIN-14 itself when unlisted and the catalog is not strict). ok is false
// for other schemes (pallets, assets) and refused GTINs. A GTIN several
// owners' items list is told apart by the reader's location's owner, else
// (a portal) by the open purchase orders at its dock (session.ItemAt).
func (r *rfidDev) itemOf(b []byte) (sku, gtin string, ok bool) {
	e, err := epc.Decode(b)
	if err != nil || e.Scheme != epc.SchemeSGTIN96 {
		return "", "", false
	}
	l := r.m.st.Lookup()
	var expected func(string) bool
	if r.cfg.Role == RolePortal {
		expected = func(sku string) bool { return r.dockPOHas(sku) }
	}
	if it, found, ambiguous := session.ItemAt(l, e.GTIN, r.cfg.Location, expected); found {
		if ambiguous {
			r.m.log.Warn("rfid: GTIN listed by several owners' items and nothing tells them apart; taken as the first: give the location an owner",
				attrDevice, r.cfg.Name, "gtin", e.GTIN, "sku", it.SKU, "location", r.cfg.Location)
		}
		return it.SKU, e.GTIN, true
	}
	if l.Settings().StrictCatalog {
		return "", e.GTIN, false
	}
	return e.GTIN, e.GTIN, true
}

// sweepDone commits an rfid-sweep when the set differs from the last one
// recorded for the location and the previous sweep saw the same set.
func (r *rfidDev) sweepDone(ctx context.Context, set []string) {
	r.seen.Store(int64(len(set)))
	r.mu.Lock()
	stable := r.candidate != nil && slices.Equal(r.candidate, set)
	r.candidate = set
	r.mu.Unlock()
	if !stable {
		return
	}
	last, had := r.m.st.LastSweep(r.cfg.Location)
	if had && slices.Equal(last, set) {
		return
	}
	counts := map[string]int64{}
	epcs := make([][]byte, 0, len(set))
	var skipped int
	for _, h := range set {
		b, _ := hex.DecodeString(h)
		sku, _, ok := r.itemOf(b)
		if !ok {
			skipped++
			continue
		}
		counts[sku]++
		epcs = append(epcs, b)
	}
	lines := make([]protocol.CountLine, 0, len(counts))
	for sku, n := range counts {
		lines = append(lines, protocol.CountLine{SKU: sku, Qty: n})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].SKU < lines[j].SKU })
	op := protocol.Op{Kind: protocol.OpRFIDSweep, Scope: protocol.ScopeLocation, Location: r.cfg.Location, Lines: lines, EPCs: epcs, Device: r.cfg.Name}
	entry := ScanLog{Device: r.cfg.Name, Raw: fmt.Sprintf("sweep of %d EPC(s)", len(set)), At: r.m.cfg.Now()}
	ops, err := r.m.st.Commit(ctx, &store.Commit{Device: r.cfg.Name, Ops: []protocol.Op{op}, KeepSession: true})
	if err != nil {
		entry.Verdict, entry.Reason = session.Bad, "sweep not saved: "+err.Error()
		r.m.log.Error("rfid sweep not saved", attrDevice, r.cfg.Name, "err", err)
		r.m.recordLocked(r.cfg.Name, entry)
		return
	}
	r.sweeps.Add(1)
	entry.Verdict = session.Good
	entry.Reason = fmt.Sprintf("rfid sweep of %s committed: %d unit(s) of %d sku(s)", r.cfg.Location, len(epcs), len(lines))
	if skipped > 0 {
		entry.Reason += fmt.Sprintf("; %d tag(s) that are not catalog items ignored", skipped)
	}
	for _, o := range ops {
		entry.Seqs = append(entry.Seqs, o.Seq)
	}
	r.m.log.Info("rfid sweep", attrDevice, r.cfg.Name, "location", r.cfg.Location, "epcs", len(epcs))
	r.m.recordLocked(r.cfg.Name, entry)
}

// dockPOHas reports whether an open purchase order at the portal's dock
// has a line for sku.
func (r *rfidDev) dockPOHas(sku string) bool {
	for _, p := range r.m.st.POs() {
		if p.Dock != r.cfg.Location || (p.Status != "" && p.Status != "open") {
			continue
		}
		for _, l := range p.Lines {
			if l.SKU == sku {
				return true
			}
		}
	}
	return false
}

// openPO returns the open purchase order at the portal's dock that best
// fits sku: one with a line for it, else any open one.
func (r *rfidDev) openPO(sku string) string {
	var any string
	pos := r.m.st.POs()
	sort.Slice(pos, func(i, j int) bool { return pos[i].ID < pos[j].ID })
	for _, p := range pos {
		if p.Dock != r.cfg.Location || (p.Status != "" && p.Status != "open") {
			continue
		}
		for _, l := range p.Lines {
			if l.SKU == sku {
				return p.ID
			}
		}
		if any == "" {
			any = p.ID
		}
	}
	return any
}

// portalRead receives a unit the first time this gateway sees its EPC.
func (r *rfidDev) portalRead(ctx context.Context, b []byte) {
	h := strings.ToUpper(hex.EncodeToString(b))
	if _, known := r.m.st.Known(h); known {
		return
	}
	sku, gtin, ok := r.itemOf(b)
	if !ok {
		if gtin != "" {
			r.m.recordLocked(r.cfg.Name, ScanLog{Device: r.cfg.Name, Raw: "EPC " + h, Verdict: session.Bad, At: r.m.cfg.Now(),
				Reason: "GTIN " + gtin + " is not in the catalog (strict catalog): unit not received"})
		}
		return
	}
	r.m.epcMu.Lock()
	defer r.m.epcMu.Unlock()
	if _, known := r.m.st.Known(h); known {
		return
	}
	d := session.Station{Session: &session.State{Kind: session.Receive, Location: r.cfg.Location, PO: r.openPO(sku)}}
	now := r.m.cfg.Now()
	out := session.Step(d, session.Input{Kind: scan.KindItem, SKU: sku, Raw: "EPC:" + h}, session.Env{Device: r.cfg.Name, Now: now, Data: r.m.st.Lookup()})
	entry := ScanLog{Device: r.cfg.Name, Raw: "EPC " + h, Verdict: out.Verdict, Reason: out.Reason, At: now}
	if len(out.Ops) != 1 {
		r.m.recordLocked(r.cfg.Name, entry)
		return
	}
	op := out.Ops[0]
	op.EPCs = [][]byte{append([]byte(nil), b...)}
	ops, err := r.m.st.Commit(ctx, &store.Commit{Device: r.cfg.Name, Ops: []protocol.Op{op}, KeepSession: true})
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			r.m.log.Error("rfid receipt not saved", attrDevice, r.cfg.Name, "err", err)
		}
		entry.Verdict, entry.Reason = session.Bad, "not saved: "+err.Error()
		r.m.recordLocked(r.cfg.Name, entry)
		return
	}
	r.received.Add(1)
	for _, o := range ops {
		entry.Seqs = append(entry.Seqs, o.Seq)
	}
	r.m.recordLocked(r.cfg.Name, entry)
}

// recordLocked is record for callers that do not hold the device's lock.
func (m *Manager) recordLocked(name string, e ScanLog) {
	ds, err := m.device(name)
	if err != nil {
		return
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	m.record(name, e)
}
