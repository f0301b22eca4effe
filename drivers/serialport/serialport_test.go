package serialport

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial/enumerator"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in      string
		want    Selector
		wantErr bool
	}{
		{"/dev/ttyACM0", Selector{Path: "/dev/ttyACM0"}, false},
		{"./scanner.pty", Selector{Path: "./scanner.pty"}, false},
		{"usb:05E0:1701", Selector{VID: "05E0", PID: "1701"}, false},
		{"USB:05e0:1701", Selector{VID: "05E0", PID: "1701"}, false},
		{"05e0:1701", Selector{VID: "05E0", PID: "1701"}, false},
		{"usb:5e0:1701:S/N 12:34", Selector{VID: "05E0", PID: "1701", Serial: "S/N 12:34"}, false},
		{"usb:1a86:7523@1-1.4", Selector{VID: "1A86", PID: "7523", PortPath: "1-1.4"}, false},
		{"1A86:7523:ABC@3-2", Selector{VID: "1A86", PID: "7523", Serial: "ABC", PortPath: "3-2"}, false},
		{"", Selector{}, true},
		{"ttyACM0", Selector{}, true},
		{"usb:05E0", Selector{}, true},
		{"usb:12345:0001", Selector{}, true},
		{"usb:zz:0001", Selector{}, true},
		{"usb:05E0:1701@", Selector{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSelector(tt.in)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrSelector)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			again, err := ParseSelector(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again, "String round trip")
		})
	}
}

// twoReaders are identical CH340 RFID readers without serial numbers, a
// Zebra scanner and a built-in UART.
var twoReaders = []PortInfo{
	{Name: "/dev/ttyACM0", IsUSB: true, VID: "05E0", PID: "1701", Serial: "S123", PortPath: "1-1.1"},
	{Name: "/dev/ttyS0"},
	{Name: "/dev/ttyUSB0", IsUSB: true, VID: "1A86", PID: "7523", PortPath: "1-1.2"},
	{Name: "/dev/ttyUSB1", IsUSB: true, VID: "1A86", PID: "7523", PortPath: "1-1.3"},
}

func TestResolveIn(t *testing.T) {
	tests := []struct {
		sel     string
		want    string
		wantErr error
	}{
		{"usb:05e0:1701", "/dev/ttyACM0", nil},
		{"usb:05E0:1701:s123", "/dev/ttyACM0", nil},
		{"usb:05E0:1701:OTHER", "", ErrNotFound},
		{"usb:1A86:7523", "", ErrAmbiguous},
		{"usb:1A86:7523@1-1.3", "/dev/ttyUSB1", nil},
		{"usb:1A86:7523@1-1.2", "/dev/ttyUSB0", nil},
		{"/dev/whatever", "/dev/whatever", nil},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel, err := ParseSelector(tt.sel)
			require.NoError(t, err)
			got, err := sel.ResolveIn(twoReaders)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := Selector{VID: "1A86", PID: "7523"}.ResolveIn(fromDetails(nil, ""))
	require.ErrorIs(t, err, ErrNotFound)
}

func TestSuggestDriver(t *testing.T) {
	tests := []struct{ vid, pid, product, want string }{
		{"05E0", "1701", "Symbol Bar Code Scanner", DriverLine},
		{"05e0", "1900", "Zebra SSI over CDC", DriverSSI},
		{"0C2E", "0B61", "", DriverLine},
		{"1EAB", "0D06", "", DriverLine},
		{"10C4", "EA60", "CP2102 USB to UART Bridge Controller", DriverUHF18},
		{"1A86", "7523", "USB Serial", DriverUHF18},
		{"0403", "6001", "FT232R USB UART", DriverMercury},
		{"0403", "6015", "ThingMagic M6e", DriverMercury},
		{"0403", "6015", "FT230X", DriverUnknown},
		{"1234", "5678", "", DriverUnknown},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, SuggestDriver(tt.vid, tt.pid, tt.product), "%s:%s %s", tt.vid, tt.pid, tt.product)
	}
}

// fakeSysfs builds /sys/class/tty links to USB device trees as Linux lays
// them out for a cdc-acm scanner and a usb-serial bridge.
func fakeSysfs(t *testing.T) string {
	root := t.TempDir()
	usb := filepath.Join(root, "devices", "pci0000:00", "usb1")
	acm := filepath.Join(usb, "1-1", "1-1.4")
	bridge := filepath.Join(usb, "1-1", "1-1.2")
	for _, dir := range []string{filepath.Join(acm, "1-1.4:1.0"), filepath.Join(bridge, "1-1.2:1.0", "ttyUSB0")} {
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	for _, dev := range []string{acm, bridge, filepath.Join(usb, "1-1")} {
		require.NoError(t, os.WriteFile(filepath.Join(dev, "idVendor"), []byte("05e0\n"), 0o644))
	}
	tty := filepath.Join(root, "class", "tty")
	for name, target := range map[string]string{
		"ttyACM0": filepath.Join(acm, "1-1.4:1.0"),
		"ttyUSB0": filepath.Join(bridge, "1-1.2:1.0", "ttyUSB0"),
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(tty, name), 0o755))
		require.NoError(t, os.Symlink(target, filepath.Join(tty, name, "device")))
	}
	return tty
}

func TestFromDetails(t *testing.T) {
	sysfs := fakeSysfs(t)
	got := fromDetails([]*enumerator.PortDetails{
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "1A86", PID: "7523", Product: "USB Serial"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "05e0", PID: "1701", SerialNumber: "S1", Manufacturer: "Zebra Technologies", Product: "Symbol Bar Code Scanner"},
		{Name: "/dev/ttyS0"},
	}, sysfs)
	want := []PortInfo{
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "05E0", PID: "1701", Serial: "S1", Product: "Symbol Bar Code Scanner",
			Manufacturer: "Zebra Technologies", Maker: "Zebra/Symbol", PortPath: "1-1.4", SuggestedDriver: DriverLine, Selector: "usb:05E0:1701"},
		{Name: "/dev/ttyS0", SuggestedDriver: DriverUnknown, Selector: "/dev/ttyS0"},
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "1A86", PID: "7523", Product: "USB Serial",
			Maker: "WCH CH340 bridge", PortPath: "1-1.2", SuggestedDriver: DriverUHF18, Selector: "usb:1A86:7523"},
	}
	assert.Equal(t, want, got)
}

func TestSelectorForIdenticalReaders(t *testing.T) {
	ports := fromDetails([]*enumerator.PortDetails{
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "1A86", PID: "7523"},
		{Name: "/dev/ttyUSB1", IsUSB: true, VID: "1A86", PID: "7523"},
	}, t.TempDir())
	// No sysfs: no port path, so only the device path tells them apart.
	assert.Equal(t, "/dev/ttyUSB0", ports[0].Selector)
	for _, p := range twoReaders {
		p.Selector = selectorFor(p, twoReaders)
		got, err := func() (string, error) {
			sel, err := ParseSelector(p.Selector)
			require.NoError(t, err)
			return sel.ResolveIn(twoReaders)
		}()
		require.NoError(t, err, p.Selector)
		assert.Equal(t, p.Name, got)
	}
}

func TestFormatList(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, FormatList(&b, nil))
	assert.Contains(t, b.String(), "no serial ports found")
	b.Reset()
	ports := append([]PortInfo(nil), twoReaders...)
	for i := range ports {
		ports[i].Selector = selectorFor(ports[i], ports)
		ports[i].SuggestedDriver = SuggestDriver(ports[i].VID, ports[i].PID, "")
	}
	require.NoError(t, FormatList(&b, ports))
	out := b.String()
	assert.Contains(t, out, "PORT")
	assert.Contains(t, out, "usb:1A86:7523@1-1.3")
	assert.Contains(t, out, "rfid:uhf18")
	assert.Equal(t, len(ports)+1, bytes.Count(b.Bytes(), []byte("\n")))
}

func TestListDoesNotFail(t *testing.T) {
	_, err := List()
	require.NoError(t, err)
}

func TestOpenPty(t *testing.T) {
	master, slave, err := pty.Open()
	require.NoError(t, err)
	defer slave.Close()
	p, err := Open(slave.Name(), 0)
	require.NoError(t, err)
	defer p.Close()

	_, err = master.Write([]byte("hello"))
	require.NoError(t, err)
	got := readSome(t, p, 5)
	assert.Equal(t, "hello", got)

	_, err = p.Write([]byte("\x1b7"))
	require.NoError(t, err)
	buf := make([]byte, 8)
	n, err := master.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "\x1b7", string(buf[:n]))

	// An unplugged device: reads fail instead of timing out.
	require.NoError(t, master.Close())
	require.NoError(t, slave.Close())
	var readErr error
	for range 50 {
		if _, readErr = p.Read(buf); readErr != nil {
			break
		}
	}
	require.Error(t, readErr)
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing"), 9600)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, "plugged in")
}

// readSome reads until n bytes arrived or 50 read timeouts passed.
func readSome(t *testing.T, p Port, n int) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 64)
	for i := 0; i < 50 && len(out) < n; i++ {
		k, err := p.Read(buf)
		require.NoError(t, err)
		out = append(out, buf[:k]...)
	}
	return string(out)
}
