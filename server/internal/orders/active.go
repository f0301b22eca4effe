package orders

import (
	"context"
)

// The active replica: only it publishes availability and raises or clears
// oversell conflicts; the others keep their model current.

// SetActive makes the service the active replica (true) or a passive one.
// Only the active one publishes availability and raises or clears oversell
// conflicts; a passive one keeps its model current. Becoming active reads
// channels and oversell conflicts again, recomputes everything and
// publishes every channel's availability, before SetActive returns (an
// error leaves that to the next Flush). After SetActive(false) returns,
// nothing more is published or raised. Before Start it only sets the
// state Start begins in. It must not be called from a hook.
func (s *Service) SetActive(ctx context.Context, active bool) error {
	s.mu.Lock()
	was := s.active
	s.active = active
	if active && !was {
		s.activating = true
	}
	if !active {
		s.activating = false
	}
	pending := s.activating && s.started // else Start does it
	s.mu.Unlock()
	if !active {
		// let a publish or raise in flight end
		s.publishMu.Lock()
		//lint:ignore SA2001 a barrier: waits for the publish in flight
		s.publishMu.Unlock()
		s.oversellMu.Lock()
		s.mu.Lock()
		s.oversold = map[whsku]oversell{} // read again when active
		s.mu.Unlock()
		s.oversellMu.Unlock()
		return nil
	}
	if pending {
		return s.flush(ctx)
	}
	return nil
}

// Active reports whether the service is the active replica.
func (s *Service) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// activate prepares the next recompute of a service that became active.
func (s *Service) activate(ctx context.Context) error {
	if err := s.loadOversold(ctx); err != nil {
		return err
	}
	all := s.allSKUs()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return nil
	}
	s.activating = false
	for k := range all {
		s.dirty[k] = struct{}{}
	}
	s.reloadCh = true
	s.last = map[string]string{} // publish every channel
	s.publish = true
	return nil
}
