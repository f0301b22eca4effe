// Package secretsfile keeps a file of secrets (the API token file, the
// broker's password file) parsed in memory and reloads it when it changes,
// so secrets can be added or revoked without a restart.
package secretsfile

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// CheckEvery is how often File looks at the file again, at most.
const CheckEvery = time.Second

// File is a parsed file that reloads itself when its modification time or
// size changes (looked at, at most, once per CheckEvery). A file that
// becomes unreadable or malformed keeps the last good value; LastError
// says why.
type File[T any] struct {
	path  string
	what  string // "token file", "password file": for errors
	parse func([]byte) (T, error)
	now   func() time.Time

	mu      sync.Mutex
	value   T
	mtime   time.Time
	size    int64
	checked time.Time
	lastErr error
}

// Load reads and parses the file at path; what names it in errors.
func Load[T any](path, what string, parse func([]byte) (T, error)) (*File[T], error) {
	f := &File[T]{path: path, what: what, parse: parse, now: time.Now}
	if err := f.reload(true); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File[T]) reload(first bool) error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.what, err)
	}
	if !first && st.ModTime().Equal(f.mtime) && st.Size() == f.size {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.what, err)
	}
	v, err := f.parse(b)
	if err != nil {
		return fmt.Errorf("%s %s: %w", f.what, f.path, err)
	}
	f.value, f.mtime, f.size = v, st.ModTime(), st.Size()
	return nil
}

// Get returns the parsed file, re-reading it first when it changed.
func (f *File[T]) Get() T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := f.now(); now.Sub(f.checked) >= CheckEvery {
		f.checked = now
		f.lastErr = f.reload(false)
	}
	return f.value
}

// Peek returns the parsed file as last loaded, without looking at the file.
func (f *File[T]) Peek() T {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.value
}

// LastError returns the error of the last reload attempt, if any.
func (f *File[T]) LastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// Path returns the file's path.
func (f *File[T]) Path() string { return f.path }
