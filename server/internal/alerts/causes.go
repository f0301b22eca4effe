package alerts

import (
	"strings"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// pfxCause keys a named cause's standing alert (al/k/{cause} → alert id):
// present from the alert's raise until the cause is gone (ClearFor), also
// after a person resolved the alert, so that the cause raises it once.
const pfxCause = "al/k/"

// RaiseFor raises a for the cause named cause (a caller's own key, e.g.
// a lot and its expiry), once while the cause lasts: it reports false
// when the cause already has its alert (standing, or resolved by a
// person), from this replica or another. The cause is recorded in the
// alert's transaction.
func (s *Service) RaiseFor(cause string, a Alert) (Alert, bool, error) {
	key := []byte(pfxCause + cause)
	return s.raiseIf(a, func(tx store.Tx) (bool, error) {
		_, had, err := tx.Get(key)
		return err == nil && !had, err
	}, func(tx store.Tx, id string) error { return tx.Set(key, []byte(id)) })
}

// ClearFor records that cause is gone: its alert, when it still stands,
// is cleared (and published), and the cause may raise again. It reports
// the alert it cleared; a cause without an alert is no error.
func (s *Service) ClearFor(cause string) (Alert, bool, error) {
	key := []byte(pfxCause + cause)
	var a Alert
	var cleared bool
	err := s.rec.Update(func(tx store.Tx) error {
		a, cleared = Alert{}, false
		id, had, err := tx.Get(key)
		if err != nil || !had {
			return err
		}
		if err := tx.Delete(key); err != nil {
			return err
		}
		a, cleared, err = s.closeIn(tx, string(id), StatusCleared, "", "")
		return err
	})
	if err != nil {
		s.log.Error("clear alert", "cause", cause, "err", err)
		return Alert{}, false, err
	}
	if cleared {
		s.log.Info("alert "+string(a.Status), "id", a.ID, "kind", a.Kind, "warehouse", a.Warehouse)
		if s.cfg.Publish != nil {
			s.cfg.Publish(a)
		}
	}
	return a, cleared, nil
}

// Causes lists the causes starting with prefix that have their alert
// (RaiseFor and not yet ClearFor).
func (s *Service) Causes(prefix string) ([]string, error) {
	var out []string
	err := s.rec.View(func(tx store.Tx) error {
		out = nil
		return tx.Scan([]byte(pfxCause+prefix), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			out = append(out, strings.TrimPrefix(string(k), pfxCause))
			return nil
		})
	})
	return out, err
}
