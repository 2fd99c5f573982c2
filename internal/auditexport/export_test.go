package auditexport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// fakeCollector is an OTLP/HTTP endpoint that decodes what it gets and can
// be told to refuse. The real Collector is in collector_test.go; this one
// shows what the wire carries (headers, protobuf) and fails on demand.
type fakeCollector struct {
	mu      sync.Mutex
	fail    bool
	headers []http.Header
	ids     []int64
	attrs   []map[string]string
}

func (f *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers = append(f.headers, r.Header.Clone())
	if f.fail || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	var req collogs.ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				m := map[string]string{}
				for _, kv := range lr.Attributes {
					if kv.Key == AttrEventID {
						f.ids = append(f.ids, kv.Value.GetIntValue())
					}
					m[kv.Key] = kv.Value.GetStringValue()
				}
				f.attrs = append(f.attrs, m)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (f *fakeCollector) got() ([]int64, []http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.ids...), append([]http.Header(nil), f.headers...)
}

func TestOnlyThePolicysKindsLeaveWithItsHeaders(t *testing.T) {
	f := &fakeCollector{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	l := openLog(t, dir)
	ctx := context.Background()
	for _, k := range []audit.Kind{audit.KindAppStarted, audit.KindCallSubmitted, audit.KindCallDecided, audit.KindPolicyDenied, audit.KindAppStopped} {
		if _, err := l.Append(ctx, audit.Event{Kind: k, Actor: audit.ActorApp, Arguments: []byte(`{"a":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	v := vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()})
	if err := v.Set("siem-key", []byte("Bearer s3cr3t")); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Source: l, CursorPath: filepath.Join(dir, "cursor"), Secret: v.Get,
		Settings: Settings{Endpoint: srv.URL + "/v1/logs", Headers: map[string]string{"X-Tenant": "defra"},
			KeychainHeaders: map[string]string{"Authorization": "siem-key"},
			Kinds:           []audit.Kind{audit.KindCallDecided, audit.KindPolicyDenied}}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.Run(rctx); close(done) }()
	waitFor(t, "the export to catch up", func() bool { return e.Status().Behind == 0 })
	cancel()
	<-done
	ids, headers := f.got()
	if len(ids) != 2 || ids[0] != 3 || ids[1] != 4 {
		t.Fatalf("sent events %v, want 3 and 4 (the decided and the denied)", ids)
	}
	h := headers[0]
	if h.Get("Authorization") != "Bearer s3cr3t" || h.Get("X-Tenant") != "defra" {
		t.Errorf("headers %v", h)
	}
	if _, ok := f.attrs[0][AttrArguments]; ok {
		t.Error("arguments left without the policy allowing it")
	}
}

func TestAFailingCollectorHoldsTheCursor(t *testing.T) {
	f := &fakeCollector{fail: true}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	l := openLog(t, dir)
	for range 3 {
		if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp}); err != nil {
			t.Fatal(err)
		}
	}
	cursorPath := filepath.Join(dir, "cursor")
	e, stop := runExporter(t, l, Settings{Endpoint: srv.URL + "/v1/logs"}, cursorPath)
	waitFor(t, "failed tries", func() bool { _, h := f.got(); return len(h) >= 3 })
	if st := e.Status(); st.Behind != 3 || st.Err == "" {
		t.Errorf("status while refused: %+v, want 3 behind with a reason", st)
	}
	stop()
	if c, err := loadCursor(cursorPath, srv.URL+"/v1/logs"); err != nil || c.Last.ID != 0 {
		t.Fatalf("cursor after refusals: %+v, %v; want none", c, err)
	}
	f.mu.Lock()
	f.fail = false
	f.mu.Unlock()
	e, _ = runExporter(t, l, Settings{Endpoint: srv.URL + "/v1/logs"}, cursorPath)
	waitFor(t, "delivery", func() bool { ids, _ := f.got(); return len(ids) == 3 })
	waitFor(t, "status", func() bool { return e.Status() == Status{} })
	// A cursor for another endpoint is not this one's: a new collector
	// gets everything.
	if c, _ := loadCursor(cursorPath, "https://other.example.org/v1/logs"); c.Last.ID != 0 {
		t.Errorf("cursor for another endpoint starts at %d", c.Last.ID)
	}
}

func TestBackoffIsCapped(t *testing.T) {
	f := &fakeCollector{fail: true}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	l := openLog(t, dir)
	if _, err := l.Append(context.Background(), audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp}); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Source: l, CursorPath: filepath.Join(dir, "cursor"), Settings: Settings{Endpoint: srv.URL},
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	// Doubling without a cap would wait over a minute before try 17.
	waitFor(t, "many tries", func() bool { _, h := f.got(); return len(h) >= 17 })
	cancel()
	<-done
}
