package testbed

import (
	"context"
	"time"
)

// TB is the part of testing.TB that Await and Addr use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Context() context.Context
}

// Await is WaitFor for a test: it fails the test when the wait fails.
func Await(t TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := WaitFor(t.Context(), d, what, cond); err != nil {
		t.Fatalf("%v", err)
	}
}

// Addr is FreeAddr for a test: it fails the test when there is none.
func Addr(t TB) string {
	t.Helper()
	a, err := FreeAddr()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return a
}
