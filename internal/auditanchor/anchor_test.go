package auditanchor

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// slowStore blocks every Set until released, counting them, the way a
// Secret Service prompt would.
type slowStore struct {
	*vault.Vault
	mu      sync.Mutex
	sets    int
	release chan struct{}
	fail    error
}

func (s *slowStore) Set(name string, v []byte) error {
	<-s.release
	s.mu.Lock()
	s.sets++
	err := s.fail
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.Vault.Set(name, v)
}

func openLog(t *testing.T) (*audit.Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := audit.Open(path, audit.Options{RetentionDays: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeeperIsOffTheCallPath appends while the keychain hangs: every append
// returns, and once the keychain answers, one write carries the newest
// head for all of them.
func TestKeeperIsOffTheCallPath(t *testing.T) {
	l, path := openLog(t)
	st := &slowStore{Vault: vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()}), release: make(chan struct{})}
	k := NewKeeper(l, st, path, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	for range 50 {
		if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp}); err != nil {
			t.Fatal(err)
		}
	}
	close(st.release)
	want := l.Head()
	waitFor(t, "the newest head in the keychain", func() bool {
		h, ok, err := Read(st, path)
		return err == nil && ok && h == want
	})
	cancel()
	<-done
	st.mu.Lock()
	sets := st.sets
	st.mu.Unlock()
	if sets >= 50 {
		t.Errorf("%d keychain writes for 50 commits; want them coalesced", sets)
	}
}

// TestKeeperSurvivesAnUnavailableKeychain: appends go on, the failure is
// kept for Verify to report, and the next working write catches up.
func TestKeeperSurvivesAnUnavailableKeychain(t *testing.T) {
	l, path := openLog(t)
	st := &slowStore{Vault: vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()}), release: make(chan struct{}), fail: vault.ErrUnavailable}
	close(st.release)
	k := NewKeeper(l, st, path, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go k.Run(ctx)
	if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp}); err != nil {
		t.Fatalf("an append failed with the keychain unavailable: %v", err)
	}
	waitFor(t, "the failure to show", func() bool { return errors.Is(k.Err(), vault.ErrUnavailable) })
	if _, ok, _ := Read(st, path); ok {
		t.Fatal("a head was recorded although the keychain failed")
	}
	st.mu.Lock()
	st.fail = nil
	st.mu.Unlock()
	if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindAppStopped, Actor: audit.ActorApp}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the head after the keychain came back", func() bool {
		h, ok, _ := Read(st, path)
		return ok && h == l.Head() && k.Err() == nil
	})
}

// TestAnchorShowsDeletedRows keeps the head in a keychain, deletes the
// newest rows with the sqlite driver, and verifies against the anchor.
func TestAnchorShowsDeletedRows(t *testing.T) {
	var kr vault.Keyring = vaulttest.NewKeyring()
	if os.Getenv("COUNTERSIGN_REAL_KEYRING") != "" {
		kr = nil // the real Secret Service scripts/test starts
	}
	v := vault.Open(vault.Options{Keyring: kr, Dir: t.TempDir(), Service: "Countersign tests"})
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := audit.Open(path, audit.Options{RetentionDays: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeeper(l, v, path, quiet)
	for range 6 {
		if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindCallDecided, Outcome: audit.OutcomeApproved, Actor: audit.ActorPerson}); err != nil {
			t.Fatal(err)
		}
	}
	k.Flush()
	if k.Err() != nil {
		t.Fatal(k.Err())
	}
	l.Close()
	t.Cleanup(func() { v.Delete(Name(path)) })

	deleteFrom(t, path, 5)
	head, ok, err := Read(v, path)
	if err != nil || !ok || head.ID != 6 {
		t.Fatalf("Read = %+v %v %v", head, ok, err)
	}
	rep, err := audit.VerifyFileHead(context.Background(), path, head)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(rep.String(), "the log ends at event 4 but event 6 was recorded") {
		t.Fatalf("report: %s", rep)
	}
}

// deleteFrom removes events from id on, as someone with the sqlite driver
// and the file would: the append-only trigger dropped first.
func deleteFrom(t *testing.T, path string, id int64) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER events_no_delete`, `DELETE FROM events WHERE id >= ?`} {
		if _, err := db.Exec(q, id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNamesDifferPerFile(t *testing.T) {
	if Name("/a/audit.db") == Name("/b/audit.db") {
		t.Fatal("two logs share an anchor")
	}
	if _, ok, err := Read(vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()}), "/nowhere/audit.db"); ok || err != nil {
		t.Fatalf("no anchor yet: ok %v err %v", ok, err)
	}
}

// countingStore counts keychain writes.
type countingStore struct {
	*vault.Vault
	sets atomic.Int64
}

func (s *countingStore) Set(name string, v []byte) error {
	s.sets.Add(1)
	return s.Vault.Set(name, v)
}

// TestKeeperWritesAtMostOncePerGap appends steadily, one commit at a time:
// the keychain is written at most once per gap (plus the first write and
// the last), and the newest head still reaches it.
func TestKeeperWritesAtMostOncePerGap(t *testing.T) {
	l, path := openLog(t)
	st := &countingStore{Vault: vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()})}
	k := NewKeeper(l, st, path, quiet)
	k.gap = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	start := time.Now()
	const commits = 200
	for range commits {
		if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp}); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	want := l.Head()
	waitFor(t, "the newest head in the keychain", func() bool {
		h, ok, err := Read(st, path)
		return err == nil && ok && h == want
	})
	sets := st.sets.Load()
	cancel()
	<-done
	if most := int64(elapsed/k.gap) + 3; sets > most {
		t.Errorf("%d keychain writes for %d commits in %v; want at most %d (one per %v)", sets, commits, elapsed, most, k.gap)
	}
}
