// Package screen serves the gateway's live page for a tablet at the dock or
// in a picking zone: per device the open session, the scan expected next,
// the last scans with their verdicts, suggestions (the put-away bin) and
// errors; for the gateway its uplink, open tasks and purchase orders,
// notices waiting for the server (local reorder alerts among them) and
// RFID ghost stock. The page is one embedded HTML file that polls
// /screen/api/state; it needs no build step and no outside assets.
//
// Routes (on the agent's --http listener):
//
//	GET /screen                 every device
//	GET /screen/{device}        one device, large, for a tablet beside it
//	GET /screen/api/state       the page's data as JSON (?device=NAME)
package screen

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/shelfsync/shelfsync/agent/internal/devices"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

//go:embed page.html
var page []byte

// Source is what the screen shows; the agent's parts implement it.
type Source struct {
	Warehouse, Gateway string
	// Devices returns every device's state.
	Devices func() []devices.DeviceInfo
	// Connected reports whether the uplink is connected; LastError is its
	// last problem.
	Connected func() (bool, string)
	Store     *store.Store
	// Disk, when set, reports the data disk's state (default: Store's);
	// without a Store (the agent waiting for space to open it) only the
	// devices and the disk are shown.
	Disk func() store.DiskState
}

// State is the JSON the page renders.
type State struct {
	Warehouse string               `json:"warehouse"`
	Gateway   string               `json:"gateway"`
	Connected bool                 `json:"connected"`
	Uplink    string               `json:"uplink_error,omitempty"`
	Disk      string               `json:"disk,omitempty"` // "full" (scans refused) or "low"
	Outbox    uint64               `json:"outbox"`
	Devices   []devices.DeviceInfo `json:"devices"`
	Tasks     []protocol.Task      `json:"tasks"`
	POs       []PO                 `json:"pos"`
	Notices   []protocol.Notice    `json:"notices"`
	Ghosts    map[string][]string  `json:"ghosts,omitempty"`
	Counts    map[string]int       `json:"counts"`
	Now       int64                `json:"now_ms"`
}

// PO is an open purchase order with what this gateway received of it.
type PO struct {
	protocol.PurchaseOrder
	Received map[uint32]int64 `json:"received"`
}

// Handler serves the screen.
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	servePage := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	}
	mux.HandleFunc("GET /screen", servePage)
	mux.HandleFunc("GET /screen/{device}", servePage)
	mux.HandleFunc("GET /screen/api/state", func(w http.ResponseWriter, r *http.Request) {
		st := src.state(r.URL.Query().Get("device"))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(st)
	})
	return mux
}

func (src Source) state(device string) State {
	st := State{Warehouse: src.Warehouse, Gateway: src.Gateway, Now: time.Now().UnixMilli(), Counts: map[string]int{},
		Devices: []devices.DeviceInfo{}, Tasks: []protocol.Task{}, POs: []PO{}, Notices: []protocol.Notice{}}
	if src.Connected != nil {
		st.Connected, st.Uplink = src.Connected()
	}
	if src.Devices != nil {
		for _, d := range src.Devices() {
			if device == "" || d.Name == device {
				st.Devices = append(st.Devices, d)
			}
		}
	}
	s := src.Store
	disk := src.Disk
	if disk == nil && s != nil {
		disk = s.Disk
	}
	if disk != nil {
		switch d := disk(); {
		case d.Full:
			st.Disk = "full"
		case d.Low:
			st.Disk = "low"
		}
	}
	if s == nil {
		return st
	}
	if p, err := s.Positions(); err == nil {
		st.Outbox = p.LastSeq - p.Acked
	}
	l := s.Lookup()
	open, _ := s.OpenTasks() // unreadable: the screen shows none
	for _, t := range open {
		if t.Status == "" || t.Status == "open" {
			t.Picked = l.Picked(t.ID)
			st.Tasks = append(st.Tasks, t)
		}
	}
	sort.Slice(st.Tasks, func(i, j int) bool { return st.Tasks[i].ID < st.Tasks[j].ID })
	pos := s.POs()
	for _, p := range pos {
		if p.Status != "" && p.Status != "open" {
			continue
		}
		v := PO{PurchaseOrder: p, Received: map[uint32]int64{}}
		for _, line := range p.Lines {
			v.Received[line.Line] = l.Received(p.ID, line.Line)
		}
		st.POs = append(st.POs, v)
	}
	if ns, err := s.Notices(0); err == nil && ns != nil {
		st.Notices = ns
	}
	if g, err := s.GhostStock(); err == nil && len(g) > 0 {
		st.Ghosts = g
	}
	st.Counts["items"] = len(s.Items())
	st.Counts["locations"] = len(l.Locations())
	st.Counts["pos"] = len(pos)
	st.Counts["open_tasks"] = len(st.Tasks)
	st.Counts["thresholds"] = len(s.Thresholds())
	st.Counts["asns"] = len(s.ASNs())
	return st
}
