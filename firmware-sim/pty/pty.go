// Package pty gives simulated devices a serial port: a pseudo-terminal pair
// in raw mode whose slave side is symlinked at a stable path that drivers
// open as if it were /dev/ttyACM0. It can also unplug and replug the
// device, which a driver sees as a USB device going away and coming back.
package pty

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	cpty "github.com/creack/pty"
)

// ErrUnplugged is returned by Write while the device is unplugged.
var ErrUnplugged = errors.New("pty: unplugged")

// PTY is a simulated serial device. Write sends bytes to the driver, Read
// returns what the driver wrote. Read and Write may be called concurrently
// with each other and with Unplug and Replug.
type PTY struct {
	link string

	mu      sync.Mutex
	master  *os.File
	slave   *os.File      // kept open so that master reads never see EIO between driver sessions
	plugged chan struct{} // closed while plugged; replaced by Unplug
	closed  bool
	done    chan struct{} // closed by Close
}

// Open creates a pty pair in raw mode and symlinks its slave at linkPath,
// replacing a stale symlink (but not a regular file) left there.
func Open(linkPath string) (*PTY, error) {
	p := &PTY{link: linkPath, done: make(chan struct{})}
	if err := p.plug(); err != nil {
		return nil, err
	}
	return p, nil
}

// Link returns the symlink path drivers open.
func (p *PTY) Link() string { return p.link }

// SlavePath returns the current slave device, e.g. /dev/pts/3, or "" while
// unplugged.
func (p *PTY) SlavePath() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slave == nil {
		return ""
	}
	return p.slave.Name()
}

// Plugged reports whether the device is plugged in.
func (p *PTY) Plugged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.master != nil
}

// plug makes a new pty pair and links it.
func (p *PTY) plug() error {
	master, slave, err := cpty.Open()
	if err != nil {
		return fmt.Errorf("pty: open: %w", err)
	}
	if master, err = pollable(master); err != nil {
		slave.Close()
		return fmt.Errorf("pty: open: %w", err)
	}
	if err := makeRaw(slave); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("pty: raw mode: %w", err)
	}
	if err := relink(slave.Name(), p.link); err != nil {
		master.Close()
		slave.Close()
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.master, p.slave = master, slave
	if p.plugged == nil {
		p.plugged = make(chan struct{})
	}
	close(p.plugged)
	return nil
}

// relink points link at target, atomically replacing a symlink there.
func relink(target, link string) error {
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("pty: %s exists and is not a symlink: not replacing it", link)
	}
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("pty: link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pty: link %s: %w", link, err)
	}
	return nil
}

// Write sends b to the driver.
func (p *PTY) Write(b []byte) (int, error) {
	p.mu.Lock()
	m := p.master
	p.mu.Unlock()
	if m == nil {
		return 0, ErrUnplugged
	}
	n, err := m.Write(b)
	if err != nil {
		return n, fmt.Errorf("pty: write: %w", err)
	}
	return n, nil
}

// Read returns bytes the driver wrote. While unplugged it waits for
// Replug; after Close it returns io.EOF.
func (p *PTY) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		m, plugged, closed := p.master, p.plugged, p.closed
		p.mu.Unlock()
		if closed {
			return 0, io.EOF
		}
		if m == nil {
			select {
			case <-plugged:
			case <-p.done:
			}
			continue
		}
		n, err := m.Read(b)
		if n > 0 || err == nil {
			return n, nil
		}
		p.mu.Lock()
		replaced := p.master != m
		p.mu.Unlock()
		if !replaced {
			return 0, fmt.Errorf("pty: read: %w", err)
		}
		// Unplugged under us: wait for the next plug or Close.
	}
}

// Unplug closes the pty pair and removes the link: the driver's reads fail
// (EIO) as when a USB device is pulled out.
func (p *PTY) Unplug() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.master == nil {
		return nil
	}
	p.plugged = make(chan struct{})
	err := errors.Join(p.master.Close(), p.slave.Close())
	p.master, p.slave = nil, nil
	if rmErr := os.Remove(p.link); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	if err != nil {
		return fmt.Errorf("pty: unplug: %w", err)
	}
	return nil
}

// Replug plugs a fresh pty pair in at the same link, unplugging first if
// needed. The slave device path usually changes, as a USB device's does.
func (p *PTY) Replug() error {
	if err := p.Unplug(); err != nil {
		return err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errors.New("pty: replug after Close")
	}
	return p.plug()
}

// Close unplugs the device for good and removes the link.
func (p *PTY) Close() error {
	err := p.Unplug()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	return err
}
