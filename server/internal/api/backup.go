package api

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Backup writes an online, consistent backup of the server's store to w
// (Deps.Backup; nil where the store has its own tools: PostgreSQL).
type Backup func(ctx context.Context, w io.Writer) error

// BackupStatusTrailer is the HTTP trailer that ends a complete backup
// stream with "ok" (anything else, or none, means the copy is incomplete).
const BackupStatusTrailer = "X-Shelfsync-Backup-Status"

// registerBackup serves GET /api/v1/admin/backup: the body is the backup
// stream (`shelfsync-server backup` writes it to a file); its trailer says
// whether it is complete. A store without it answers 501.
func (h *Handler) registerBackup() {
	h.handle("GET /api/v1/admin/backup", func(w http.ResponseWriter, r *http.Request) {
		if h.d.Backup == nil {
			writeError(w, http.StatusNotImplemented, "this store has no built-in backup: for PostgreSQL use pg_dump or point-in-time recovery (deploy/RECOVERY.md)")
			return
		}
		// A backup of a large store outlasts the server's write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		w.Header().Set("Trailer", BackupStatusTrailer)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="shelfsync-backup.bak"`)
		w.WriteHeader(http.StatusOK)
		if err := h.d.Backup(r.Context(), w); err != nil {
			h.d.Logger.Error("backup failed; the client's copy is incomplete", "err", err)
			w.Header().Set(BackupStatusTrailer, "error: "+err.Error())
			return
		}
		w.Header().Set(BackupStatusTrailer, "ok")
	})
}
