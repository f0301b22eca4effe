package serialport

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"go.bug.st/serial/enumerator"
)

// Suggested drivers, as PortInfo.SuggestedDriver reports them.
const (
	DriverLine    = "barcode:line"
	DriverSSI     = "barcode:ssi"
	DriverUHF18   = "rfid:uhf18"
	DriverMercury = "rfid:mercury"
	DriverUnknown = "unknown"
)

// PortInfo describes one serial port.
type PortInfo struct {
	Name            string // device path, e.g. /dev/ttyACM0
	IsUSB           bool
	VID, PID        string // 4 upper-case hex digits; empty when not USB
	Serial          string // USB serial number, often empty on cheap bridges
	Product         string // USB product string
	Manufacturer    string // USB manufacturer string
	Maker           string // maker known from VID (and PID for bridges), else Manufacturer
	PortPath        string // USB port path such as "1-1.4"; stable per physical socket
	SuggestedDriver string // DriverLine, DriverSSI, DriverUHF18, DriverMercury or DriverUnknown
	Selector        string // the selector that names this port and no other listed one
}

// vendor is a maker known by USB id.
type vendor struct {
	maker  string
	driver string
}

// vendors by VID, or by "VID:PID" for USB-serial bridges, whose VID names
// the chip maker, not the device's. The bridge drivers are guesses: the
// UHFReader18 family ships with CP2102 or CH340 bridges, ThingMagic
// Mercury development boards with FTDI; other devices use the same chips.
var vendors = map[string]vendor{
	"05E0":      {"Zebra/Symbol", DriverLine},
	"0C2E":      {"Honeywell/Metrologic", DriverLine},
	"0536":      {"Hand Held Products", DriverLine},
	"10AC":      {"Honeywell", DriverLine},
	"05F9":      {"Datalogic", DriverLine},
	"080C":      {"Datalogic", DriverLine},
	"1EAB":      {"Newland", DriverLine},
	"067E":      {"Intermec", DriverLine},
	"10C4:EA60": {"Silicon Labs CP2102 bridge", DriverUHF18},
	"1A86:7523": {"WCH CH340 bridge", DriverUHF18},
	"0403:6001": {"FTDI FT232 bridge", DriverMercury},
}

func lookupVendor(vid, pid string) (vendor, bool) {
	vid, pid = strings.ToUpper(vid), strings.ToUpper(pid)
	if v, ok := vendors[vid+":"+pid]; ok {
		return v, true
	}
	v, ok := vendors[vid]
	return v, ok
}

// Maker returns the maker known for a USB id, or "".
func Maker(vid, pid string) string {
	v, _ := lookupVendor(vid, pid)
	return v.maker
}

// SuggestDriver returns the shelfsync driver most likely to fit a USB
// device: the product string wins when it names a protocol (SSI, Mercury,
// ThingMagic, UHF), then the vendor table; DriverUnknown otherwise.
func SuggestDriver(vid, pid, product string) string {
	p := strings.ToUpper(product)
	switch {
	case strings.Contains(p, "SSI"):
		return DriverSSI
	case strings.Contains(p, "MERCURY"), strings.Contains(p, "THINGMAGIC"):
		return DriverMercury
	case strings.Contains(p, "UHF"):
		return DriverUHF18
	}
	if v, ok := lookupVendor(vid, pid); ok {
		return v.driver
	}
	return DriverUnknown
}

// sysfsTTY is where Linux lists tty devices; a variable for tests.
var sysfsTTY = "/sys/class/tty"

// List returns the serial ports of this machine, sorted by name. Ptys are
// never listed.
func List() ([]PortInfo, error) {
	details, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("serialport: list ports: %w", err)
	}
	return fromDetails(details, sysfsTTY), nil
}

// fromDetails turns enumerator output into PortInfos, reading USB port
// paths under sysfs.
func fromDetails(details []*enumerator.PortDetails, sysfs string) []PortInfo {
	out := make([]PortInfo, 0, len(details))
	for _, d := range details {
		p := PortInfo{Name: d.Name, IsUSB: d.IsUSB, SuggestedDriver: DriverUnknown}
		if d.IsUSB {
			p.VID, p.PID = strings.ToUpper(d.VID), strings.ToUpper(d.PID)
			p.Serial, p.Product, p.Manufacturer = d.SerialNumber, d.Product, d.Manufacturer
			p.Maker = Maker(p.VID, p.PID)
			if p.Maker == "" {
				p.Maker = d.Manufacturer
			}
			p.SuggestedDriver = SuggestDriver(p.VID, p.PID, p.Product)
			p.PortPath = usbPortPath(sysfs, filepath.Base(d.Name))
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := range out {
		out[i].Selector = selectorFor(out[i], out)
	}
	return out
}

// selectorFor returns the shortest selector that names p among all:
// usb:VID:PID, then with its serial, then with its port path, else its
// device path.
func selectorFor(p PortInfo, all []PortInfo) string {
	if !p.IsUSB {
		return p.Name
	}
	base := Selector{VID: p.VID, PID: p.PID}
	candidates := []Selector{base}
	if p.Serial != "" {
		candidates = append(candidates, Selector{VID: p.VID, PID: p.PID, Serial: p.Serial})
	}
	if p.PortPath != "" {
		candidates = append(candidates, Selector{VID: p.VID, PID: p.PID, PortPath: p.PortPath})
	}
	for _, c := range candidates {
		if _, err := c.ResolveIn(all); err == nil {
			return c.String()
		}
	}
	return p.Name
}

// usbPortPath returns the USB port path ("1-1.4") of tty name: the name of
// the USB device directory above /sys/class/tty/<name>/device, which holds
// idVendor. For cdc-acm that is device/.., for usb-serial bridges
// device/../.. (device is the tty's USB interface, or the usb-serial port
// below it). The name is the kernel's <bus>-<port>[.<port>…], equal to
// busnum + "-" + devpath, and stays the same while the device stays in the
// same socket. It returns "" when there is no USB parent.
func usbPortPath(sysfs, name string) string {
	dev, err := filepath.EvalSymlinks(filepath.Join(sysfs, name, "device"))
	if err != nil {
		return ""
	}
	for dir, i := dev, 0; i < 4 && dir != "/" && dir != "."; dir, i = filepath.Dir(dir), i+1 {
		if _, err := os.Stat(filepath.Join(dir, "idVendor")); err == nil {
			return filepath.Base(dir)
		}
	}
	return ""
}

// FormatList prints ports as a table, one port a line, with the selector
// to put in the agent's configuration for each.
func FormatList(w io.Writer, ports []PortInfo) error {
	if len(ports) == 0 {
		_, err := fmt.Fprintln(w, "no serial ports found (USB scanners in keyboard/HID mode do not show here)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tVID:PID\tSERIAL\tUSB PATH\tMAKER\tPRODUCT\tDRIVER\tSELECTOR")
	for _, p := range ports {
		id := "-"
		if p.IsUSB {
			id = p.VID + ":" + p.PID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			p.Name, id, dash(p.Serial), dash(p.PortPath), dash(p.Maker), dash(p.Product), p.SuggestedDriver, p.Selector)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
