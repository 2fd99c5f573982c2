// Package auditanchor keeps the audit chain's head (the newest event's id
// and hash) in the OS keychain, outside the database, so that removing the
// newest events from the database shows when the log is verified.
//
// The keychain is never on a call's path: a Keeper writes from its own
// goroutine after commits, coalesced (one write stands for every commit
// made while the previous write ran, and at most one write a second; see
// MinGap), and a keychain that is locked or
// missing only costs a log line; Verify then says the anchor is
// unavailable.
package auditanchor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/vault"
)

// Store is the keychain as the keeper uses it (vault.Vault).
type Store interface {
	Get(name string) ([]byte, error)
	Set(name string, value []byte) error
}

// Source is the audit log whose head is kept.
type Source interface {
	Head() audit.Head
	Watch() (<-chan struct{}, func())
}

// Name is the keychain entry holding the head of the audit log at path:
// one per log file, so a test's log never moves the app's anchor.
func Name(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	sum := sha256.Sum256([]byte(abs))
	return "audit-head-" + hex.EncodeToString(sum[:8])
}

// Read returns the head recorded for the log at path. found is false when
// none was ever recorded; an error means the keychain could not be read.
func Read(s Store, path string) (h audit.Head, found bool, err error) {
	b, err := s.Get(Name(path))
	if err != nil {
		if isNotFound(err) {
			return audit.Head{}, false, nil
		}
		return audit.Head{}, false, fmt.Errorf("reading the audit log's anchor from the keychain: %w", err)
	}
	if err := h.UnmarshalText(b); err != nil {
		return audit.Head{}, false, fmt.Errorf("reading the audit log's anchor from the keychain: %w", err)
	}
	return h, true, nil
}

func isNotFound(err error) bool { return errors.Is(err, vault.ErrNotFound) }

// MinGap is the least time between two keychain writes of the head while
// events keep coming. A keychain write is a D-Bus round trip and, on Linux,
// the keyring file rewritten and synced: at one per commit it competes with
// the calls it records for the CPU and the disk. The head in the keychain
// then trails the log by at most this much while it is written to (the
// newest head is written when the events stop, and at shutdown).
const MinGap = time.Second

// Keeper writes the head of a log to the keychain after commits.
type Keeper struct {
	src  Source
	st   Store
	name string
	log  *slog.Logger
	gap  time.Duration // MinGap; tests shorten it

	mu      sync.Mutex
	written audit.Head
	err     error // the last write's failure; nil after a success
}

// NewKeeper keeps the head of src, the log stored at path, in st.
func NewKeeper(src Source, st Store, path string, logger *slog.Logger) *Keeper {
	if logger == nil {
		logger = slog.Default()
	}
	return &Keeper{src: src, st: st, name: Name(path), log: logger, gap: MinGap}
}

// Run writes the head after each commit until ctx ends, then once more, so
// the app's last events (its stop) are anchored too.
func (k *Keeper) Run(ctx context.Context) {
	c, stop := k.src.Watch()
	defer stop()
	k.write()
	for {
		select {
		case <-ctx.Done():
			k.write()
			return
		case <-c:
			k.write()
			// Commits made meanwhile leave c ready: the next write
			// carries the newest head for all of them.
			select {
			case <-ctx.Done():
			case <-time.After(k.gap):
			}
		}
	}
}

// Flush writes the current head now, for shutdown.
func (k *Keeper) Flush() { k.write() }

func (k *Keeper) write() {
	h := k.src.Head()
	k.mu.Lock()
	same := h == k.written
	k.mu.Unlock()
	if same || h.ID == 0 {
		return
	}
	b, _ := h.MarshalText()
	err := k.st.Set(k.name, b)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		if k.err == nil {
			k.log.Warn("audit: keeping the log's anchor in the keychain failed; cut-off events will not show until it works", "err", err)
		}
		k.err = err
		return
	}
	if k.err != nil {
		k.log.Info("audit: the log's anchor is kept in the keychain again")
	}
	k.err = nil
	k.written = h
}

// Err is the last write's failure, or nil.
func (k *Keeper) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}
