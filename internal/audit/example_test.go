package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/countersign/countersign/internal/audit"
)

func Example() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	clock := func() time.Time { return time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC) }

	l, err := audit.Open(filepath.Join(dir, "audit.db"), audit.Options{Now: clock})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()

	// The relay records a call and the person's decision. If Append fails,
	// the call is denied.
	for _, ev := range []audit.Event{
		{Kind: audit.KindCallSubmitted, Server: "github", Tool: "create_issue", Client: "Claude Desktop",
			CallID: "1", Target: "DEFRA/ffc-pay", Arguments: []byte(`{"title":"Fix login"}`)},
		{Kind: audit.KindCallDecided, Server: "github", Tool: "create_issue", Client: "Claude Desktop",
			CallID: "1", Target: "DEFRA/ffc-pay", Outcome: audit.OutcomeDenied, Actor: audit.ActorPerson, Reason: "wrong repository"},
	} {
		if _, err := l.Append(ctx, ev); err != nil {
			log.Fatal(err)
		}
	}

	// The audit viewer asks for denials, newest first.
	page, err := l.Query(ctx, audit.Filter{Outcome: audit.OutcomeDenied}, 0, 50)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range page.Records {
		fmt.Println(r.ID, r.Time.Format(time.RFC3339), r.Kind, r.Tool, r.Target, r.Reason)
	}

	rep, err := l.Verify(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep)
	// Output:
	// 2 2026-11-02T09:30:00Z call_decided create_issue DEFRA/ffc-pay wrong repository
	// OK: 2 events verified, ids 1 to 2; last hash 010f277c84ccab0947b38aec6ce42e1cad92588b1392bc4eb9349142b081d379
}
