package auditexport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
)

// The tests here run a real OpenTelemetry Collector, built from the
// Collector's Go modules in test/otelcol (the OTLP receiver and contrib's
// file exporter), and read what it wrote.

var (
	collectorOnce sync.Once
	collectorBin  string
	collectorErr  error
)

// buildCollector builds test/otelcol once per test binary into
// .bin/otelcol at the repository root. The go command's build cache makes
// a rebuild after the first a link at most.
func buildCollector(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a real OpenTelemetry Collector; not in -short")
	}
	collectorOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		out := filepath.Join(root, ".bin", "otelcol")
		start := time.Now()
		cmd := exec.Command("go", "-C", filepath.Join(root, "test", "otelcol"), "build", "-o", out, ".")
		if b, err := cmd.CombinedOutput(); err != nil {
			collectorErr = fmt.Errorf("building the test collector: %v\n%s", err, b)
			return
		}
		collectorBin = out
		fmt.Fprintf(os.Stderr, "auditexport: test collector built in %s\n", time.Since(start).Round(100*time.Millisecond))
	})
	if collectorErr != nil {
		t.Fatal(collectorErr)
	}
	return collectorBin
}

// collector is a running test collector writing what it receives to out.
type collector struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	out  string
	cmd  *exec.Cmd
	done chan struct{}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{t: t, bin: buildCollector(t), dir: t.TempDir(), addr: freePort(t)}
	c.out = filepath.Join(c.dir, "logs.jsonl")
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  file:
    path: %s
    append: true
    flush_interval: 1ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
`, c.addr, c.out)
	if err := os.WriteFile(filepath.Join(c.dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *collector) endpoint() string { return "http://" + c.addr + "/v1/logs" }

// start runs the collector and waits until it listens.
func (c *collector) start() {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, "collector.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command(c.bin, "--config", filepath.Join(c.dir, "config.yaml"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.done = make(chan struct{})
	go func() { c.cmd.Wait(); logf.Close(); close(c.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-c.done:
			b, _ := os.ReadFile(filepath.Join(c.dir, "collector.log"))
			c.t.Fatalf("the collector stopped at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the collector did not listen on %s within a minute", c.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the collector the way a service manager does (SIGTERM), which
// lets it write what it already accepted, and waits for it.
func (c *collector) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// received is one log record as the collector wrote it.
type received struct {
	attrs    map[string]string
	resource map[string]string
	body     string
	event    string
	severity string
	timeNano string
}

// records reads every log record the collector wrote, in order.
func (c *collector) records() []received {
	c.t.Helper()
	b, err := os.ReadFile(c.out)
	if err != nil && !os.IsNotExist(err) {
		c.t.Fatal(err)
	}
	var out []received
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var req struct {
			ResourceLogs []struct {
				Resource  struct{ Attributes []otlpKV } `json:"resource"`
				ScopeLogs []struct {
					LogRecords []struct {
						TimeUnixNano string          `json:"timeUnixNano"`
						EventName    string          `json:"eventName"`
						SeverityText string          `json:"severityText"`
						Body         otlpValue       `json:"body"`
						Attributes   []otlpKV        `json:"attributes"`
						Extra        json.RawMessage `json:"-"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			// The last line may be half written while the collector runs.
			continue
		}
		for _, rl := range req.ResourceLogs {
			res := kvMap(rl.Resource.Attributes)
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					out = append(out, received{attrs: kvMap(lr.Attributes), resource: res, body: lr.Body.String(),
						event: lr.EventName, severity: lr.SeverityText, timeNano: lr.TimeUnixNano})
				}
			}
		}
	}
	return out
}

type otlpKV struct {
	Key   string    `json:"key"`
	Value otlpValue `json:"value"`
}

type otlpValue struct {
	StringValue *string `json:"stringValue"`
	IntValue    *string `json:"intValue"` // OTLP JSON writes int64 as a string
	BoolValue   *bool   `json:"boolValue"`
}

func (v otlpValue) String() string {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.IntValue != nil:
		return *v.IntValue
	case v.BoolValue != nil:
		return strconv.FormatBool(*v.BoolValue)
	}
	return ""
}

func kvMap(kvs []otlpKV) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// openLog opens a real audit log in a temporary directory.
func openLog(t *testing.T, dir string) *audit.Log {
	t.Helper()
	l, err := audit.Open(filepath.Join(dir, "audit.db"), audit.Options{RetentionDays: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// runExporter starts an exporter on l; the returned stop ends it and waits.
func runExporter(t *testing.T, l *audit.Log, set Settings, cursorPath string) (*Exporter, func()) {
	t.Helper()
	e, err := New(Options{Source: l, Settings: set, CursorPath: cursorPath, Version: "test",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return e, stop
}

// waitFor polls until cond holds, for up to two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkDelivered checks every event of l reached the collector with its
// own hash, first copies in id order, any repeat identical to the first.
func checkDelivered(t *testing.T, l *audit.Log, got []received) {
	t.Helper()
	all, err := l.After(context.Background(), 0, audit.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{}
	for _, r := range all {
		want[r.ID] = r.Hash.String()
	}
	first := map[int64]map[string]string{}
	var order []int64
	dups := 0
	for _, r := range got {
		id, err := strconv.ParseInt(r.attrs[AttrEventID], 10, 64)
		if err != nil {
			t.Fatalf("a record without an event id: %v", r.attrs)
		}
		if r.attrs[AttrHash] != want[id] {
			t.Fatalf("event %d arrived with hash %s, the log has %s", id, r.attrs[AttrHash], want[id])
		}
		if prev, ok := first[id]; ok {
			dups++
			// A repeat is the same event: the hash resolves it.
			for _, k := range []string{AttrHash, AttrPrevHash, AttrKind, AttrReason} {
				if prev[k] != r.attrs[k] {
					t.Fatalf("event %d arrived twice with different %s: %q and %q", id, k, prev[k], r.attrs[k])
				}
			}
			continue
		}
		first[id] = r.attrs
		order = append(order, id)
	}
	for i, id := range order {
		if i > 0 && id <= order[i-1] {
			t.Fatalf("events arrived out of order: %d after %d", id, order[i-1])
		}
	}
	if len(first) != len(want) {
		var missing []int64
		for id := range want {
			if first[id] == nil {
				missing = append(missing, id)
			}
		}
		t.Fatalf("%d of %d events arrived; missing %v", len(first), len(want), missing)
	}
	t.Logf("%d events arrived, %d repeated (resolved by hash)", len(first), dups)
}

func TestEveryEventArrivesWithItsAttributes(t *testing.T) {
	c := startCollector(t)
	dir := t.TempDir()
	l := openLog(t, dir)
	ctx := context.Background()
	rec, err := l.Append(ctx, audit.Event{Kind: audit.KindCallSubmitted, Server: "github", Tool: "create_issue",
		Client: "Claude Desktop", CallID: "c1", Target: "DEFRA/ffc-pay", Arguments: []byte(`{"title":"Fix [redacted: github token]"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.Event{Kind: audit.KindCallDecided, Server: "github", Tool: "create_issue",
		Client: "Claude Desktop", CallID: "c1", Target: "DEFRA/ffc-pay", Outcome: audit.OutcomeDenied,
		Actor: audit.ActorPerson, Reason: "not this repo"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.Event{Kind: audit.KindCallResult, Server: "github", Tool: "create_issue",
		CallID: "c1", ResultSize: 42, IsError: true, Redactions: map[string]int{"github token": 2, "jwt": 1}}); err != nil {
		t.Fatal(err)
	}
	_, stop := runExporter(t, l, Settings{Endpoint: c.endpoint()}, filepath.Join(dir, "export.cursor"))
	waitFor(t, "three records", func() bool { return len(c.records()) >= 3 })
	stop()
	got := c.records()
	checkDelivered(t, l, got)

	sub, dec, res := got[0], got[1], got[2]
	want := map[string]string{
		AttrEventID: "1", AttrKind: "call_submitted", AttrServer: "github", AttrTool: "create_issue",
		AttrClient: "Claude Desktop", AttrCallID: "c1", AttrTarget: "DEFRA/ffc-pay",
		AttrHash: rec.Hash.String(), AttrPrevHash: rec.PrevHash.String(),
	}
	for k, v := range want {
		if sub.attrs[k] != v {
			t.Errorf("submitted %s = %q, want %q", k, sub.attrs[k], v)
		}
	}
	if _, ok := sub.attrs[AttrArguments]; ok {
		t.Error("arguments left without the policy allowing it")
	}
	for k, v := range map[string]string{AttrOutcome: "denied", AttrActor: "person", AttrReason: "not this repo", AttrEventID: "2"} {
		if dec.attrs[k] != v {
			t.Errorf("decided %s = %q, want %q", k, dec.attrs[k], v)
		}
	}
	if dec.severity != "WARN" || dec.event != "countersign.audit.call_decided" {
		t.Errorf("decided severity %q event %q", dec.severity, dec.event)
	}
	for k, v := range map[string]string{AttrRedactions: "3", AttrRedactionPrefix + "github token": "2", AttrRedactionPrefix + "jwt": "1",
		AttrResultSize: "42", AttrResultIsError: "true"} {
		if res.attrs[k] != v {
			t.Errorf("result %s = %q, want %q", k, res.attrs[k], v)
		}
	}
	head := l.Head()
	if res.attrs[AttrHeadID] != "3" || res.attrs[AttrHeadHash] != head.Hash.String() {
		t.Errorf("the batch's head anchor is %s/%s, want 3/%s", res.attrs[AttrHeadID], res.attrs[AttrHeadHash], head.Hash)
	}
	if sub.resource["service.name"] != "countersign" {
		t.Errorf("resource %v", sub.resource)
	}
	if sub.timeNano != strconv.FormatInt(rec.Time.UnixNano(), 10) {
		t.Errorf("time %s, want %d", sub.timeNano, rec.Time.UnixNano())
	}
}

// TestEventsSurviveCollectorAndAppRestarts writes events all along while
// the collector is stopped and started again, and while the exporter (the
// app) is stopped and started again: every event still arrives, in order,
// and any repeat carries the same hash.
func TestEventsSurviveCollectorAndAppRestarts(t *testing.T) {
	c := startCollector(t)
	dir := t.TempDir()
	l := openLog(t, dir)
	cursorPath := filepath.Join(dir, "export.cursor")
	set := Settings{Endpoint: c.endpoint(), Arguments: true}
	ctx := context.Background()

	var wg sync.WaitGroup
	writing := make(chan struct{})
	wg.Go(func() {
		defer close(writing)
		for i := range 300 {
			if _, err := l.Append(ctx, audit.Event{Kind: audit.KindCallDecided, Server: "s", Tool: "t",
				Outcome: audit.OutcomeApproved, Actor: audit.ActorPerson, Reason: fmt.Sprint("event ", i),
				Arguments: []byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	})

	e, stopExp := runExporter(t, l, set, cursorPath)
	waitFor(t, "the first events", func() bool { return len(c.records()) >= 20 })

	// The collector goes away mid-stream; events keep being written.
	c.stop()
	n := l.Head().ID
	waitFor(t, "events written while the collector is down", func() bool { return l.Head().ID >= n+30 })
	waitFor(t, "the exporter to notice", func() bool { return e.Status().Err != "" })
	if e.Status().Behind == 0 {
		t.Error("the export is not behind while the collector is down")
	}
	c.start()
	waitFor(t, "delivery after the collector came back", func() bool { return len(c.records()) >= 100 })

	// The app stops mid-stream and starts again later.
	stopExp()
	n = l.Head().ID
	waitFor(t, "events written while the app's exporter is stopped", func() bool { return l.Head().ID >= n+30 })
	e, _ = runExporter(t, l, set, cursorPath)

	<-writing
	wg.Wait()
	last := l.Head().ID
	waitFor(t, "every event", func() bool {
		got := c.records()
		return len(got) > 0 && got[len(got)-1].attrs[AttrEventID] == strconv.FormatInt(last, 10)
	})
	waitFor(t, "status caught up", func() bool { return e.Status().Behind == 0 })
	got := c.records()
	checkDelivered(t, l, got)
	if got[0].attrs[AttrArguments] != `{"n":0}` {
		t.Errorf("arguments %q, want the stored redacted form", got[0].attrs[AttrArguments])
	}
}
