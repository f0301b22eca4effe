package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/drivers/device"
	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

// Log attribute keys.
const (
	attrDevice  = "device"
	attrVerdict = "verdict"
	attrReason  = "reason"
)

// Config configures the manager.
type Config struct {
	Specs        []Spec
	ReceivingLoc string
	IdleTimeout  time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
	// OnScan, when set, is called after every scan's verdict (for metrics
	// and the screens).
	OnScan func(ScanLog)
}

// ScanLog is one scan and its verdict.
type ScanLog struct {
	Device  string          `json:"device"`
	Raw     string          `json:"raw"`
	Verdict session.Verdict `json:"verdict"`
	Reason  string          `json:"reason"`
	Seqs    []uint64        `json:"seqs,omitempty"`
	At      time.Time       `json:"at"`
}

// DeviceInfo is a device's state for the status API.
type DeviceInfo struct {
	Name      string    `json:"name"`
	Path      string    `json:"path"`
	Connected bool      `json:"connected"`
	Reads     uint64    `json:"reads"`
	Errors    uint64    `json:"framing_errors"`
	Session   string    `json:"session,omitempty"`
	Location  string    `json:"location,omitempty"`
	Operator  string    `json:"operator,omitempty"`
	Expect    string    `json:"expect"`
	Recent    []ScanLog `json:"recent"`
	// Kind is "barcode" or "rfid"; Role and the reader fields are RFID's.
	Kind string `json:"kind,omitempty"`
	// PO, Order and Task are what the open session works against.
	PO    string `json:"po,omitempty"`
	Order string `json:"order,omitempty"`
	Task  string `json:"task,omitempty"`
	// Suggest is the put-away bin slotting suggests for the carried items.
	Suggest string   `json:"suggest,omitempty"`
	Carried []string `json:"carried,omitempty"`
	// Error is the device's last problem (connection, unreadable scan).
	Error string    `json:"error,omitempty"`
	RFID  *RFIDInfo `json:"rfid,omitempty"`
}

// Manager owns the gateway's devices and their sessions.
type Manager struct {
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	devs  []*device.Device
	rfids []*rfidDev // rfid.go
	epcMu sync.Mutex // serialises portal receipts (receive each EPC once)

	mu    sync.Mutex
	state map[string]*devState // by device name
	noise map[string]*noiseGate

	// refuse, when set, answers every scan with a bad beep and this
	// reason, recording nothing (NewRefusing: there is no store).
	refuse string
}

type devState struct {
	mu      sync.Mutex      // serialises a device's scans
	station session.Station // who is logged in, the open session
	recent  []ScanLog
}

const recentScans = 20

// New builds a manager; Run starts the devices.
func New(cfg Config, st *store.Store) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, st: st, log: cfg.Logger, state: map[string]*devState{}}
	for _, sp := range cfg.Specs {
		if sp.Kind == "rfid" {
			rc, err := sp.RFIDConfig()
			if err != nil {
				return nil, err
			}
			m.rfids = append(m.rfids, &rfidDev{cfg: rc, m: m})
			continue
		}
		dc, err := sp.DeviceConfig()
		if err != nil {
			return nil, err
		}
		dc.Logger = cfg.Logger
		m.devs = append(m.devs, device.Open(dc))
	}
	return m, nil
}

// NewRefusing builds a manager for while the agent cannot open its store
// (its data disk is full at start): it reads the barcode devices and
// answers every scan with a bad beep and reason, shown with the device
// (Devices) and logged (through the noise gate), and records nothing.
// RFID readers are not read: they have no beep, and a portal's reads
// are taken again from its next sweep once the store is open.
func NewRefusing(cfg Config, reason string) (*Manager, error) {
	var specs []Spec
	for _, sp := range cfg.Specs {
		if sp.Kind != "rfid" {
			specs = append(specs, sp)
		}
	}
	cfg.Specs = specs
	m, err := New(cfg, nil)
	if err != nil {
		return nil, err
	}
	m.refuse = reason
	return m, nil
}

// Run reads every device until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range m.rfids {
		wg.Add(1)
		go func() { defer wg.Done(); r.run(ctx) }()
	}
	for _, d := range m.devs {
		reads := make(chan device.Read, 64)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := d.Run(ctx, reads); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Error("device stopped", attrDevice, d.Name(), "err", err)
			}
			close(reads)
		}()
		go func() {
			defer wg.Done()
			for r := range reads {
				m.handleRead(ctx, d, r)
			}
		}()
	}
	wg.Wait()
}

func (m *Manager) handleRead(ctx context.Context, d *device.Device, r device.Read) {
	if r.Err != nil {
		if !m.admitBad(d.Name()) {
			return
		}
		m.log.Warn("unreadable scan rejected", attrDevice, d.Name(), "err", r.Err)
		m.record(d.Name(), ScanLog{Device: d.Name(), Raw: truncate(r.Text), Verdict: session.Bad, Reason: r.Err.Error(), At: m.cfg.Now()})
		_ = d.Feedback(feedback.Bad)
		return
	}
	if m.refuse != "" {
		if !m.admitBad(d.Name()) {
			return
		}
		m.log.Warn("scan refused", attrDevice, d.Name(), attrReason, m.refuse)
		m.record(d.Name(), ScanLog{Device: d.Name(), Raw: truncate(r.Text), Verdict: session.Bad, Reason: m.refuse, At: m.cfg.Now()})
		_ = d.Feedback(feedback.Bad)
		return
	}
	in, derr := decode(r.Text)
	if derr != nil && !m.admitBad(d.Name()) {
		return // a garbage flood: counted, not logged or beeped one by one
	}
	log, err := m.scan(ctx, d.Name(), r.Text, in, derr, derr == nil)
	if errors.Is(err, errNoisy) {
		return // a flood of readable but refused scans: counted, not logged or beeped one by one
	}
	if err != nil {
		// Not durable: the operator must not hear a good beep.
		_ = d.Feedback(feedback.Bad)
		return
	}
	sig := feedback.Good
	switch log.Verdict {
	case session.Bad:
		sig = feedback.Bad
	case session.Warn:
		sig = feedback.Warn
	}
	if err := d.Feedback(sig); err != nil && !errors.Is(err, device.ErrNotConnected) {
		m.log.Warn("feedback not delivered", attrDevice, d.Name(), "err", err)
	}
}

// maxBadPerSecond is the most rejected reads per device and second that
// are logged and beeped; no operator scans faster.
const maxBadPerSecond = 20

// admitBad applies the device's noise gate to a rejected read.
func (m *Manager) admitBad(name string) bool {
	m.mu.Lock()
	g, ok := m.noise[name]
	if !ok {
		g = &noiseGate{maxBad: maxBadPerSecond}
		if m.noise == nil {
			m.noise = map[string]*noiseGate{}
		}
		m.noise[name] = g
	}
	m.mu.Unlock()
	handle, report := g.admit(m.cfg.Now())
	if report > 0 {
		m.log.Warn("device is sending unreadable data faster than anyone scans; ignoring it (check baud rate, cable, suffix settings)", attrDevice, name, "suppressed", report)
	}
	return handle
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func (m *Manager) device(name string) (*devState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ds, ok := m.state[name]; ok {
		return ds, nil
	}
	ds := &devState{}
	if m.st == nil { // NewRefusing
		m.state[name] = ds
		return ds, nil
	}
	b, err := m.st.Session(name)
	if err != nil {
		return nil, err
	}
	if len(b) > 0 {
		if err := protocol.Unmarshal(b, &ds.station); err != nil {
			m.log.Error("saved session unreadable; starting fresh", attrDevice, name, "err", err)
			ds.station = session.Station{}
		}
	}
	m.state[name] = ds
	return ds, nil
}

// Scan processes one scanned text from a device: decode, step the session,
// commit durably, and return the verdict. An error means nothing was
// committed and the operator must be told so (bad beep).
func (m *Manager) Scan(ctx context.Context, name, text string) (ScanLog, error) {
	in, err := decode(text)
	return m.scan(ctx, name, text, in, err, false)
}

// errNoisy reports a refused scan that the device's noise gate dropped
// (neither logged, recorded nor beeped).
var errNoisy = errors.New("refused scan dropped by the noise gate")

// scan is Scan with the text already decoded (decodeErr from decode).
// With gate, a refused scan that changes nothing goes through the device's
// noise gate (errNoisy when dropped): a device that sends readable scans at
// machine speed (partial terminators cutting text into short lines) floods
// no more than one sending garbage.
func (m *Manager) scan(ctx context.Context, name, text string, in session.Input, decodeErr error, gate bool) (ScanLog, error) {
	if m.refuse != "" {
		entry := ScanLog{Device: name, Raw: truncate(text), Verdict: session.Bad, Reason: m.refuse, At: m.cfg.Now()}
		m.record(name, entry)
		return entry, errors.New(m.refuse)
	}
	ds, err := m.device(name)
	if err != nil {
		return ScanLog{}, err
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	now := m.cfg.Now()
	entry := ScanLog{Device: name, Raw: truncate(text), At: now}
	var out session.Outcome
	if decodeErr != nil {
		out = session.Outcome{Verdict: session.Bad, Reason: decodeErr.Error(), Station: ds.station}
	} else {
		out = session.Step(ds.station, in, session.Env{Device: name, ReceivingLoc: m.cfg.ReceivingLoc, Now: now, IdleTimeout: m.cfg.IdleTimeout, Data: m.st.Lookup()})
	}
	if gate && out.Verdict == session.Bad && !out.Changed && len(out.Ops) == 0 && !m.admitBad(name) {
		return entry, errNoisy
	}
	if err := validOps(out.Ops); err != nil {
		// The server would quarantine it: refuse the scan now, while the
		// operator can still do something about it.
		out = session.Outcome{Verdict: session.Bad, Reason: "refused: " + err.Error(), Station: ds.station}
	}
	entry.Verdict, entry.Reason = out.Verdict, out.Reason
	if out.Changed || len(out.Ops) > 0 {
		c := &store.Commit{Device: name, Ops: out.Ops, Notices: out.Notices}
		if out.Station.Session == nil && out.Station.Operator == "" {
			c.EndSession = true
		} else {
			b, err := protocol.Marshal(out.Station)
			if err != nil {
				return ScanLog{}, err
			}
			c.Session = b
		}
		ops, err := m.st.Commit(ctx, c)
		if err != nil {
			entry.Verdict, entry.Reason = session.Bad, "not saved: "+err.Error()+" — scan again; if it persists check the gateway's disk"
			m.record(name, entry)
			m.log.Error("commit failed; scan rejected", attrDevice, name, "err", err)
			return entry, err
		}
		for _, op := range ops {
			entry.Seqs = append(entry.Seqs, op.Seq)
		}
		ds.station = out.Station
	}
	level := slog.LevelInfo
	if entry.Verdict != session.Good {
		level = slog.LevelWarn
	}
	m.log.Log(ctx, level, "scan", attrDevice, name, attrVerdict, string(entry.Verdict), attrReason, entry.Reason)
	m.record(name, entry)
	return entry, nil
}

// validOps runs protocol.Op.Validate on ops not yet stamped with a seq.
func validOps(ops []protocol.Op) error {
	for _, op := range ops {
		op.Seq = 1
		if err := op.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) record(name string, e ScanLog) {
	ds, err := m.device(name)
	if err != nil {
		return
	}
	ds.recent = append(ds.recent, e)
	if len(ds.recent) > recentScans {
		ds.recent = ds.recent[len(ds.recent)-recentScans:]
	}
	if m.cfg.OnScan != nil {
		m.cfg.OnScan(e)
	}
}

// Devices returns every configured device's state.
func (m *Manager) Devices() []DeviceInfo {
	out := make([]DeviceInfo, 0, len(m.devs))
	for _, d := range m.devs {
		st := d.Stats()
		info := DeviceInfo{Name: d.Name(), Path: d.Path(), Connected: d.Connected(), Reads: st.Reads, Errors: st.FramingErrors, Recent: []ScanLog{}, Kind: "barcode"}
		if ds, err := m.device(d.Name()); err == nil {
			ds.mu.Lock()
			info.Operator = ds.station.Operator
			if s := ds.station.Session; s != nil {
				info.Session, info.Location = string(s.Kind), s.Location
				info.PO, info.Order, info.Task, info.Suggest = s.PO, s.Order, s.Task, s.Suggest
				for _, c := range s.Carried {
					info.Carried = append(info.Carried, fmt.Sprintf("%d × %s", c.Qty, c.SKU))
				}
			}
			for i := len(ds.recent) - 1; i >= 0; i-- {
				if ds.recent[i].Verdict == session.Bad {
					info.Error = ds.recent[i].Reason
					break
				}
				if ds.recent[i].Verdict == session.Good {
					break
				}
			}
			info.Expect = session.Expect(ds.station.Session)
			info.Recent = append(info.Recent, ds.recent...)
			ds.mu.Unlock()
		}
		out = append(out, info)
	}
	for _, r := range m.rfids {
		info := r.info()
		if ds, err := m.device(r.cfg.Name); err == nil {
			ds.mu.Lock()
			info.Recent = append(info.Recent, ds.recent...)
			ds.mu.Unlock()
		}
		info.Expect = "reads tags (" + r.cfg.Role + " at " + r.cfg.Location + ")"
		out = append(out, info)
	}
	return out
}

// Statuses returns device states for the MQTT status message.
func (m *Manager) Statuses() []protocol.DeviceStatus {
	out := make([]protocol.DeviceStatus, 0, len(m.devs))
	for _, d := range m.devs {
		out = append(out, protocol.DeviceStatus{Name: d.Name(), Connected: d.Connected()})
	}
	for _, r := range m.rfids {
		out = append(out, protocol.DeviceStatus{Name: r.cfg.Name, Connected: r.connected.Load()})
	}
	return out
}

// decode maps a drivers/scan result onto a session input.
func decode(text string) (session.Input, error) {
	s, err := scan.Decode(text)
	if err != nil {
		return session.Input{}, err
	}
	in := session.Input{Kind: s.Kind, Raw: s.Raw, Value: s.Value, Qty: int64(s.Qty), GTIN: s.GTIN, Lot: s.Lot, Expiry: s.Expiry}
	switch s.Kind {
	case scan.KindCommand:
		in.Command = string(s.Command)
	case scan.KindItem:
		in.SKU = s.SKU
		if !s.HasQty {
			in.Qty = 0
		}
	case scan.KindOperator, scan.KindLocation, scan.KindPO, scan.KindOrder, scan.KindTask, scan.KindQty, scan.KindLot, scan.KindReason, scan.KindPallet, scan.KindOwner:
	default:
		return in, errors.New("scan kind " + string(s.Kind) + " not understood")
	}
	return in, nil
}
