package secretsfile

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Lines calls line for each line of b that is neither blank nor a '#'
// comment, trimmed, with its 1-based line number, and stops at the first
// error. At most max bytes are accepted (the file is held in memory) and a
// line may be 64 KiB long. Errors are wrapped in bad, naming the line.
func Lines(b []byte, max int, bad error, line func(n int, s string) error) error {
	if len(b) > max {
		return fmt.Errorf("%w: larger than %d bytes", bad, max)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		if err := line(n, s); err != nil {
			return fmt.Errorf("%w: line %d: %v", bad, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: line %d: %v", bad, n+1, err)
	}
	return nil
}
