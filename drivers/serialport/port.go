// Package serialport opens the serial ports of scanners and readers and
// finds them again by USB identity. It wraps go.bug.st/serial so that the
// rest of shelfsync sees a plain io.ReadWriteCloser whose reads return
// (0, nil) every ReadTimeout, and it enumerates USB serial ports with the
// maker and the driver shelfsync would use for each.
//
// Ports are named by a selector (see ParseSelector): a device path, or a
// USB vendor:product id with an optional serial number or USB port path,
// so that a scanner keeps its configuration when it comes back as another
// /dev/ttyACMn after being unplugged.
package serialport

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"go.bug.st/serial"
)

// ReadTimeout is how long a Read waits for data before returning (0, nil),
// so that readers can notice cancellation.
const ReadTimeout = 100 * time.Millisecond

// DefaultBaud is used when Open is given a baud rate of 0. USB CDC ports
// ignore it; RS-232 scanners mostly default to 9600.
const DefaultBaud = 9600

// Port is an open serial port. Read returns (0, nil) when ReadTimeout
// passes with no data; any error means the device is gone or the port was
// closed: close it and open it again.
type Port interface {
	io.Reader
	io.Writer
	io.Closer
}

// Open opens the serial port at path in raw mode, 8N1, at baud (0 means
// DefaultBaud). It never touches the modem lines (no DTR/RTS ioctls), which
// pseudo-terminals reject.
func Open(path string, baud int) (Port, error) {
	if baud == 0 {
		baud = DefaultBaud
	}
	// InitialStatusBits stays nil: setting DTR/RTS fails on ptys.
	mode := &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	p, err := serial.Open(path, mode)
	if err != nil {
		return nil, fmt.Errorf("serialport: open %s: %w%s", path, err, hint(err))
	}
	if err := p.SetReadTimeout(ReadTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("serialport: set read timeout on %s: %w", path, err)
	}
	return p, nil
}

const notFoundHint = " (is the device plugged in? list ports with `shelfsync-agent scanners`)"

// hint returns advice for the errors an operator can fix.
func hint(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return notFoundHint
	}
	var pe *serial.PortError
	if !errors.As(err, &pe) {
		return ""
	}
	switch pe.Code() {
	case serial.PermissionDenied:
		return " (add the user to the dialout group, or install shelfsync's udev rule)"
	case serial.PortBusy:
		return " (another program has the port open)"
	case serial.PortNotFound:
		return notFoundHint
	}
	return ""
}
