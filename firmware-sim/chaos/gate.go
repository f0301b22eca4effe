package chaos

import (
	"context"
	"sync"
)

// gate is a broadcast of "up" and "down": waiters block while down, and
// Down returns a channel closed at the next transition to down.
type gate struct {
	mu   sync.Mutex
	up   chan struct{} // closed while up
	down chan struct{} // closed while down
}

func newGate() *gate {
	g := &gate{up: make(chan struct{}), down: make(chan struct{})}
	close(g.down)
	return g
}

func (g *gate) setUp() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.up:
		return
	default:
	}
	close(g.up)
	g.down = make(chan struct{})
}

func (g *gate) setDown() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.down:
		return
	default:
	}
	close(g.down)
	g.up = make(chan struct{})
}

// chans returns the current up and down channels.
func (g *gate) chans() (up, down <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up, g.down
}

// wait blocks until up or ctx ends.
func (g *gate) wait(ctx context.Context) error {
	up, _ := g.chans()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
