// Package auditexport sends every audit event to the organisation's
// OpenTelemetry collector as an OTLP log record (OTLP/HTTP, protobuf), with
// the official OpenTelemetry Go log SDK and OTLP exporter.
//
// Each record carries the event's fields as attributes (server, tool,
// client, target, outcome, actor, reason, redaction counts, event id, hash
// and previous hash) and the chain's head at the time of sending, so a
// SIEM holds an anchor the local database cannot quietly fall behind.
// Arguments leave only if the policy allows, and only as the audit log
// stores them: redacted.
//
// Nothing is lost: the exporter reads the log in id order from a cursor
// persisted beside it, advances the cursor only after the collector
// accepted a batch, and retries a failed batch with capped exponential
// backoff until it is accepted. Delivery is at least once: after a crash
// between acceptance and the cursor's save, a batch is sent again, and the
// event hash (countersign.event.hash) is the key to deduplicate on.
package auditexport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/countersign/countersign/internal/audit"
)

// Attribute keys of an exported event.
const (
	AttrEventID         = "countersign.event.id"
	AttrKind            = "countersign.event.kind"
	AttrHash            = "countersign.event.hash" // the key to deduplicate on
	AttrPrevHash        = "countersign.event.prev_hash"
	AttrServer          = "countersign.server"
	AttrTool            = "countersign.tool"
	AttrClient          = "countersign.client"
	AttrCallID          = "countersign.call_id"
	AttrTarget          = "countersign.target"
	AttrOutcome         = "countersign.outcome"
	AttrActor           = "countersign.actor"
	AttrReason          = "countersign.reason"
	AttrResultSize      = "countersign.result.size"
	AttrResultIsError   = "countersign.result.is_error"
	AttrRedactions      = "countersign.redactions"        // total secrets removed
	AttrRedactionPrefix = "countersign.redactions."       // + detector name: count
	AttrDetail          = "countersign.detail"            // JSON
	AttrArguments       = "countersign.arguments"         // JSON, redacted; only if the policy allows
	AttrEditedArguments = "countersign.edited_arguments"  // JSON, redacted; only if the policy allows
	AttrHeadID          = "countersign.audit.head.id"     // the chain's newest event when the batch was sent
	AttrHeadHash        = "countersign.audit.head.hash"   // and its hash
	AttrGapAfter        = "countersign.audit.missed_from" // first id of events removed before they could be sent
)

// Defaults for Options.
const (
	DefaultBatchSize  = 200
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	requestTimeout    = 30 * time.Second
)

// Source is the audit log as the exporter reads it.
type Source interface {
	// After returns up to limit events with ids above id, oldest first.
	After(ctx context.Context, id int64, limit int) ([]audit.Record, error)
	// Head is the newest committed event.
	Head() audit.Head
	// Watch signals commits, coalesced.
	Watch() (<-chan struct{}, func())
}

// Settings are the admin policy's export settings.
type Settings struct {
	// Endpoint is the OTLP/HTTP logs URL (https, or http on loopback).
	Endpoint string
	// Headers are sent with every request, values as given.
	Headers map[string]string
	// KeychainHeaders maps a header name to the keychain secret holding
	// its value, read with Options.Secret.
	KeychainHeaders map[string]string
	// CAFile is a PEM file of extra certificate authorities to trust.
	CAFile string
	// Kinds are the kinds of event to send; empty sends every kind.
	Kinds []audit.Kind
	// Arguments sends each call's (redacted) arguments.
	Arguments bool
}

// Options configure an Exporter.
type Options struct {
	Source   Source
	Settings Settings
	// CursorPath is the file that remembers the last event sent.
	CursorPath string
	// Secret reads a keychain secret by name (vault.Vault.Get).
	Secret func(name string) ([]byte, error)
	// Version is Countersign's version, for the resource.
	Version string
	Logger  *slog.Logger

	BatchSize              int           // events per request; 0 means DefaultBatchSize
	MinBackoff, MaxBackoff time.Duration // between failed tries; 0 means the defaults
}

// Status is how far behind the export is.
type Status struct {
	// Behind counts events written but not yet accepted by the collector
	// (events of kinds the policy does not send count until passed over).
	Behind int64
	// Err is the last failure, in a sentence; empty after a success.
	Err string
}

// Exporter sends the audit log to a collector. Run does the work.
type Exporter struct {
	src      Source
	set      Settings
	path     string
	secret   func(string) ([]byte, error)
	log      *slog.Logger
	batch    int
	min, max time.Duration
	kinds    map[audit.Kind]bool

	otlp     *otlploghttp.Exporter
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
	pending  *collect

	cur     atomic.Int64 // last event id accepted
	mu      sync.Mutex
	lastErr string
}

// New prepares an exporter for o.Settings; nothing is sent until Run.
func New(o Options) (*Exporter, error) {
	if o.Source == nil || o.Settings.Endpoint == "" || o.CursorPath == "" {
		return nil, errors.New("audit export: a source, an endpoint and a cursor path are needed")
	}
	e := &Exporter{
		src: o.Source, set: o.Settings, path: o.CursorPath, secret: o.Secret, log: o.Logger,
		batch: o.BatchSize, min: o.MinBackoff, max: o.MaxBackoff,
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.batch <= 0 {
		e.batch = DefaultBatchSize
	}
	if e.min <= 0 {
		e.min = DefaultMinBackoff
	}
	if e.max <= 0 {
		e.max = DefaultMaxBackoff
	}
	if len(o.Settings.Kinds) > 0 {
		e.kinds = map[audit.Kind]bool{}
		for _, k := range o.Settings.Kinds {
			e.kinds[k] = true
		}
	}
	if len(o.Settings.KeychainHeaders) > 0 && o.Secret == nil {
		return nil, errors.New("audit export: keychain headers need a keychain")
	}
	c, err := loadCursor(e.path, e.set.Endpoint)
	if err != nil {
		return nil, err
	}
	e.cur.Store(c.Last.ID)

	host, _ := os.Hostname()
	e.pending = &collect{}
	e.provider = sdklog.NewLoggerProvider(
		sdklog.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "countersign"),
			attribute.String("service.version", o.Version),
			attribute.String("host.name", host),
		)),
		sdklog.WithProcessor(e.pending),
	)
	e.logger = e.provider.Logger("github.com/countersign/countersign/internal/auditexport")
	return e, nil
}

// client builds the OTLP exporter with the resolved headers. It is built
// lazily: a keychain secret may be unavailable at first.
func (e *Exporter) client(ctx context.Context) (*otlploghttp.Exporter, error) {
	if e.otlp != nil {
		return e.otlp, nil
	}
	headers := maps.Clone(e.set.Headers)
	if headers == nil {
		headers = map[string]string{}
	}
	for name, secret := range e.set.KeychainHeaders {
		v, err := e.secret(secret)
		if err != nil {
			return nil, fmt.Errorf("reading the value of header %s from the keychain (secret %q): %w", name, secret, err)
		}
		headers[name] = string(v)
	}
	opts := []otlploghttp.Option{
		otlploghttp.WithEndpointURL(e.set.Endpoint),
		otlploghttp.WithHeaders(headers),
		otlploghttp.WithTimeout(requestTimeout),
		// The exporter's own retry would hold a batch for a minute and then
		// drop it; Run retries without end instead.
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
	}
	if e.set.CAFile != "" {
		pem, err := os.ReadFile(e.set.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the export's certificate authorities: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate found in %s", e.set.CAFile)
		}
		opts = append(opts, otlploghttp.WithTLSClientConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	c, err := otlploghttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("setting up the audit export: %w", err)
	}
	e.otlp = c
	return c, nil
}

// Status says how far behind the export is.
func (e *Exporter) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{Behind: max(0, e.src.Head().ID-e.cur.Load()), Err: e.lastErr}
}

func (e *Exporter) setErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		e.lastErr = ""
	} else {
		e.lastErr = err.Error()
	}
}

// Run sends events until ctx ends: first whatever the log holds past the
// cursor, then each new commit. A batch that fails is tried again after a
// pause that doubles up to the maximum; the cursor moves only past batches
// the collector accepted.
func (e *Exporter) Run(ctx context.Context) {
	watch, stop := e.src.Watch()
	defer stop()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e.otlp != nil {
			e.otlp.Shutdown(sctx)
		}
		e.provider.Shutdown(sctx)
	}()
	fails := 0
	wait := func() bool {
		d := e.min << min(fails, 20)
		d = min(d, e.max)
		fails++
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		last := e.cur.Load()
		recs, err := e.src.After(ctx, last, e.batch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.fail(err)
			if !wait() {
				return
			}
			continue
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-watch:
			}
			continue
		}
		if err := e.send(ctx, last, recs); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.fail(err)
			if !wait() {
				return
			}
			continue
		}
		if fails > 0 {
			e.log.Info("audit export: the collector accepts events again")
		}
		fails = 0
		e.setErr(nil)
		end := recs[len(recs)-1]
		e.cur.Store(end.ID)
		if err := (cursor{Endpoint: e.set.Endpoint, Last: audit.Head{ID: end.ID, Hash: end.Hash}}).save(e.path); err != nil {
			// The events were accepted; without the saved cursor they are
			// sent again after a restart, which the hashes deduplicate.
			e.log.Warn("audit export", "err", err)
		}
	}
}

func (e *Exporter) fail(err error) {
	e.mu.Lock()
	first := e.lastErr == ""
	e.mu.Unlock()
	e.setErr(err)
	if first {
		e.log.Warn("audit export failed; trying again", "err", err)
	} else {
		e.log.Debug("audit export failed; trying again", "err", err)
	}
}

// send exports recs (which follow the event last) in one request.
func (e *Exporter) send(ctx context.Context, last int64, recs []audit.Record) error {
	head := e.src.Head()
	missed := int64(0)
	if recs[0].ID != last+1 {
		// Retention removed events before they could be sent: say so in the
		// batch, so the SIEM sees the gap rather than guessing.
		missed = last + 1
		e.log.Warn("audit export: events were removed by retention before they were sent", "from", last+1, "to", recs[0].ID-1)
	}
	e.pending.reset()
	for _, r := range recs {
		if e.kinds != nil && !e.kinds[r.Kind] {
			continue
		}
		e.logger.Emit(ctx, e.record(r, head, missed))
		missed = 0
	}
	batch := e.pending.take()
	if len(batch) == 0 {
		return nil
	}
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	if err := c.Export(ctx, batch); err != nil {
		return fmt.Errorf("sending %d audit events to %s: %w", len(batch), e.set.Endpoint, err)
	}
	return nil
}

// record is the OTLP log record for one event.
func (e *Exporter) record(r audit.Record, head audit.Head, missed int64) otellog.Record {
	var lr otellog.Record
	lr.SetTimestamp(r.Time)
	lr.SetObservedTimestamp(time.Now())
	lr.SetEventName("countersign.audit." + string(r.Kind))
	lr.SetSeverity(severity(r))
	lr.SetSeverityText(severity(r).String())
	lr.SetBody(attribute.StringValue(summary(r)))
	kv := []attribute.KeyValue{
		attribute.Int64(AttrEventID, r.ID),
		attribute.String(AttrKind, string(r.Kind)),
		attribute.String(AttrHash, r.Hash.String()),
		attribute.String(AttrPrevHash, r.PrevHash.String()),
		attribute.Int64(AttrHeadID, head.ID),
		attribute.String(AttrHeadHash, head.Hash.String()),
	}
	str := func(k, v string) {
		if v != "" {
			kv = append(kv, attribute.String(k, v))
		}
	}
	str(AttrServer, r.Server)
	str(AttrTool, r.Tool)
	str(AttrClient, r.Client)
	str(AttrCallID, r.CallID)
	str(AttrTarget, r.Target)
	str(AttrOutcome, string(r.Outcome))
	str(AttrActor, string(r.Actor))
	str(AttrReason, r.Reason)
	str(AttrDetail, string(r.Detail))
	if r.Kind == audit.KindCallResult || r.ResultSize > 0 {
		kv = append(kv, attribute.Int64(AttrResultSize, r.ResultSize), attribute.Bool(AttrResultIsError, r.IsError))
	}
	if len(r.Redactions) > 0 {
		total := 0
		names := slices.Sorted(maps.Keys(r.Redactions))
		for _, n := range names {
			total += r.Redactions[n]
			kv = append(kv, attribute.Int(AttrRedactionPrefix+n, r.Redactions[n]))
		}
		kv = append(kv, attribute.Int(AttrRedactions, total))
	}
	if e.set.Arguments {
		str(AttrArguments, string(r.Arguments))
		str(AttrEditedArguments, string(r.EditedArguments))
	}
	if missed != 0 {
		kv = append(kv, attribute.Int64(AttrGapAfter, missed))
	}
	lr.AddAttributes(kv...)
	return lr
}

// severity is WARN for what a security team looks at first (denials, a
// failed sign-in, secrets found), INFO otherwise.
func severity(r audit.Record) otellog.Severity {
	switch {
	case r.Kind == audit.KindPolicyDenied, r.Kind == audit.KindSignInFailed,
		r.Kind == audit.KindCallDecided && r.Outcome != audit.OutcomeApproved,
		len(r.Redactions) > 0:
		return otellog.SeverityWarn
	}
	return otellog.SeverityInfo
}

// summary is the record's body: one line a person can read in a SIEM.
func summary(r audit.Record) string {
	s := string(r.Kind)
	if r.Tool != "" {
		s += " " + r.Tool
	}
	if r.Server != "" {
		s += " on " + r.Server
	}
	if r.Target != "" {
		s += " (" + r.Target + ")"
	}
	if r.Outcome != "" {
		s += ": " + string(r.Outcome)
	}
	if r.Actor != "" {
		s += " by " + string(r.Actor)
	}
	return s
}

// collect is a log processor that keeps what is emitted, so one batch is
// built through the SDK (resource, scope, limits) and handed to the OTLP
// exporter in one request whose outcome Run sees.
type collect struct {
	mu   sync.Mutex
	recs []sdklog.Record
}

func (c *collect) OnEmit(_ context.Context, r *sdklog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r.Clone())
	return nil
}

func (c *collect) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (c *collect) Shutdown(context.Context) error                         { return nil }
func (c *collect) ForceFlush(context.Context) error                       { return nil }

func (c *collect) reset() {
	c.mu.Lock()
	c.recs = c.recs[:0]
	c.mu.Unlock()
}

func (c *collect) take() []sdklog.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}
