package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auditanchor"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

func TestVerifyAuditExitStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	st := vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()})
	if got := verifyAudit(path, st); got != 2 {
		t.Errorf("missing file: exit %d, want 2", got)
	}
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindCallDecided, Server: "s", Tool: "t", Outcome: audit.OutcomeDenied, Actor: audit.ActorPerson}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if got := verifyAudit(path, st); got != 0 {
		t.Errorf("intact log: exit %d, want 0", got)
	}
	// Turn a denial into an approval behind the log's back.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The log's triggers refuse updates; an attacker drops them first.
	var triggers []string
	rows, _ := db.Query(`SELECT name FROM sqlite_master WHERE type='trigger'`)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		triggers = append(triggers, n)
	}
	rows.Close()
	for _, n := range triggers {
		db.Exec(`DROP TRIGGER "` + n + `"`)
	}
	if _, err := db.Exec(`UPDATE events SET outcome='approved' WHERE id=2`); err != nil {
		t.Fatal(err)
	}
	if got := verifyAudit(path, st); got != 1 {
		t.Errorf("tampered log: exit %d, want 1", got)
	}
}

// TestVerifyAuditFindsCutOffEvents deletes the newest rows with the sqlite
// driver: the chain left is valid, and only the anchor in the keychain
// shows the loss.
func TestVerifyAuditFindsCutOffEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	st := vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()})
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := auditanchor.NewKeeper(l, st, path, nil)
	for range 5 {
		if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindCallDecided, Server: "s", Tool: "t", Outcome: audit.OutcomeApproved, Actor: audit.ActorPerson}); err != nil {
			t.Fatal(err)
		}
	}
	k.Flush()
	l.Close()
	if got := verifyAudit(path, st); got != 0 {
		t.Fatalf("intact log: exit %d, want 0", got)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER events_no_delete`, `DELETE FROM events WHERE id > 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if got := verifyAudit(path, st); got != 1 {
		t.Errorf("log without its newest events: exit %d, want 1", got)
	}
}
