package barcodesim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/firmware-sim/pty"
)

// RunScript scans each line of r, pausing gap between scans. A line may
// also be a comment ("# …"), blank, or a directive:
//
//	@sleep 500ms   pause
//	@unplug        pull the cable
//	@replug        plug it back in
//
// Scans that fail because the scanner is unplugged or the host did not ACK
// are logged and skipped, as a real scanner would lose them. RunScript
// returns the number of scans sent, at end of input, on ctx's end, or on
// another error. It returns on ctx's end even while a read of r blocks (a
// terminal or a fifo whose writer stays open); the goroutine reading r then
// stays blocked until r delivers or the process exits.
func (s *Sim) RunScript(ctx context.Context, r io.Reader, gap time.Duration) (int, error) {
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	lines, readErr := readLines(readCtx, r)
	sent := 0
	for {
		var line string
		select {
		case <-ctx.Done():
			return sent, s.Flush()
		case l, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					return sent, fmt.Errorf("barcodesim: script: %w", err)
				}
				return sent, s.Flush()
			}
			line = strings.TrimRight(l, "\r")
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "", strings.HasPrefix(trimmed, "#"):
			continue
		case strings.HasPrefix(trimmed, "@"):
			if err := s.directive(ctx, trimmed); err != nil {
				return sent, err
			}
			continue
		}
		ok, err := s.scanOne(ParseText(line))
		if err != nil {
			return sent, err
		}
		if ok {
			sent++
		}
		s.pause(ctx, gap)
	}
}

// readLines delivers r's lines one at a time on the first channel, closes it
// at end of input or on ctx's end, and then sends the read error (nil at a
// clean end) on the second.
func readLines(ctx context.Context, r io.Reader) (<-chan string, <-chan error) {
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		errc <- sc.Err()
	}()
	return lines, errc
}

// RunRandom scans n entries picked at random (seeded by Config.Seed) from
// catalog, at rate scans per second (0: as fast as the host ACKs).
func (s *Sim) RunRandom(ctx context.Context, catalog []string, n int, rate float64) (int, error) {
	if len(catalog) == 0 {
		return 0, errors.New("barcodesim: random scans need a non-empty catalog")
	}
	var gap time.Duration
	if rate > 0 {
		gap = time.Duration(float64(time.Second) / rate)
	}
	sent := 0
	for i := 0; i < n && ctx.Err() == nil; i++ {
		s.scanMu.Lock()
		text := catalog[s.rnd.IntN(len(catalog))]
		s.scanMu.Unlock()
		ok, err := s.scanOne(text)
		if err != nil {
			return sent, err
		}
		if ok {
			sent++
		}
		s.pause(ctx, gap)
	}
	return sent, s.Flush()
}

// scanOne scans text, turning the errors a real scanner shrugs off into a
// log line.
func (s *Sim) scanOne(text string) (bool, error) {
	err := s.Scan(text)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNoAck), errors.Is(err, pty.ErrUnplugged):
		s.cfg.Logger.Warn("scan lost", "text", text, "err", err)
		return false, nil
	}
	return false, err
}

func (s *Sim) directive(ctx context.Context, line string) error {
	fields := strings.Fields(line)
	switch fields[0] {
	case "@sleep":
		if len(fields) != 2 {
			return fmt.Errorf("barcodesim: %q: want @sleep DURATION", line)
		}
		d, err := time.ParseDuration(fields[1])
		if err != nil {
			return fmt.Errorf("barcodesim: %q: %w", line, err)
		}
		s.pause(ctx, d)
		return nil
	case "@unplug":
		return s.Unplug()
	case "@replug":
		return s.Replug()
	}
	return fmt.Errorf("barcodesim: unknown directive %q (want @sleep, @unplug or @replug)", line)
}

// pause waits d unless ctx ends or the Sim closes.
func (s *Sim) pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
}

// LoadCatalog reads scan texts for RunRandom: one per line, the first
// comma-separated field of each; blank lines, "#" comments and a header
// line (first field "gtin", "sku" or "barcode") are skipped.
func LoadCatalog(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		field, _, _ := strings.Cut(line, ",")
		field = strings.Trim(strings.TrimSpace(field), `"`)
		switch strings.ToLower(field) {
		case "", "gtin", "sku", "barcode":
			continue
		}
		out = append(out, ParseText(field))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("barcodesim: catalog: %w", err)
	}
	return out, nil
}
