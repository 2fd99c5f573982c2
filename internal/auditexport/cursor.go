package auditexport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/countersign/countersign/internal/audit"
)

// cursor is how far the export got: the last event the collector accepted,
// for one endpoint. It lives in a small file beside the audit log, written
// atomically after each accepted batch, so a restart resumes where the
// last run stopped and sends again at most the one batch in flight.
type cursor struct {
	Endpoint string     `json:"endpoint"`
	Last     audit.Head `json:"last"`
}

// loadCursor reads the cursor at path for endpoint. A missing file, or one
// written for another endpoint, starts from the beginning: a new
// collector gets every event the log still holds.
func loadCursor(path, endpoint string) (cursor, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cursor{Endpoint: endpoint}, nil
	}
	if err != nil {
		return cursor{}, fmt.Errorf("reading the audit export position: %w", err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, fmt.Errorf("reading the audit export position %s: %w", path, err)
	}
	if c.Endpoint != endpoint {
		return cursor{Endpoint: endpoint}, nil
	}
	return c, nil
}

// save writes c to path atomically (a temporary file synced, then renamed).
func (c cursor) save(path string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-export-*")
	if err != nil {
		return fmt.Errorf("saving the audit export position: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the audit export position: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the audit export position: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving the audit export position: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving the audit export position: %w", err)
	}
	return nil
}
