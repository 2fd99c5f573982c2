// Package app wires Countersign together and owns its lifecycle: settings,
// the local token, one instance per user, the approval gate, the relay and
// its loopback listener, notifications, the services the interface uses,
// and an orderly shutdown that denies whatever is still waiting.
//
// The person-facing interface is handed in as a [UI]; this package never
// imports a GUI toolkit, so the whole core runs and is tested headless.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auditanchor"
	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/notify"
	"github.com/countersign/countersign/internal/pins"
	"github.com/countersign/countersign/internal/portproof"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
	"github.com/countersign/countersign/internal/vault"
)

// UI is the person-facing interface: the only thing that decides calls.
type UI interface {
	// Run shows the interface and returns when the person quits or ctx
	// ends. Run calls it on the goroutine Run was called on, which GUI
	// toolkits need to be the main one.
	Run(ctx context.Context) error
	// Show brings the interface forward, when Countersign is launched
	// again. It is called from other goroutines.
	Show()
	// OpenURL opens a page in the person's browser, for signing in.
	OpenURL(u *url.URL) error
}

// Core is what the interface is built on.
type Core struct {
	Queue    *gate.Queue
	Settings *Settings
	Audit    *AuditView
	Connect  *Connect // "Connect your AI app": entries in the AI apps' config files
	Logger   *slog.Logger
	// FirstRun is set when Countersign started with no settings file: the
	// interface shows "Getting started".
	FirstRun bool
	// AuditExportBehind says how many audit events wait for an
	// organisation's collector that is not taking them, and why (0, ""
	// while the export keeps up or is off). It never blocks.
	AuditExportBehind func() (behind int64, problem string)
}

// Options configure Run.
type Options struct {
	ConfigPath string
	// PolicyPath is the admin policy file; "" means the machine-wide one
	// (config.AdminPolicyPath).
	PolicyPath string
	// DataDir holds the audit log, tool pins and sealed secrets; "" means
	// the folder of ConfigPath.
	DataDir string
	Logger  *slog.Logger
	// NewUI builds the interface on the core. It is required: Countersign
	// does not serve without a way for a person to decide.
	NewUI func(Core) (UI, error)
	// Notifier shows a notification when calls start waiting; nil for none.
	Notifier notify.Notifier
	// Keyring is the OS keychain; nil means the real one.
	Keyring vault.Keyring

	limits serverLimits // zero fields: defaultLimits; tests shorten them
}

// shutdownGrace is how long in-flight HTTP requests get to finish once
// every waiting call has been denied.
const shutdownGrace = 5 * time.Second

// Run serves until ctx ends or the person quits, then shuts down: waiting
// calls are denied first, then the relay and the listener close. If another
// Countersign already serves this user it is brought forward and Run
// returns ErrAlreadyRunning.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.NewUI == nil {
		return errors.New("no approval interface: refusing to start")
	}
	checks := appChecks()
	_, statErr := os.Stat(o.ConfigPath)
	firstRun := errors.Is(statErr, fs.ErrNotExist)
	// The settings service hears of changes made to the settings file
	// outside the app; the watcher reports none before it runs, and it runs
	// once the service exists.
	// The settings last in force, kept in the keychain, judge a file changed
	// while Countersign was not running.
	var settings *Settings
	inForce, keep := keptSettings(vault.Open(vault.Options{Keyring: o.Keyring, Dir: secretsDir(o)}), log)
	watcher := config.NewWatcher(config.WatcherOptions{SettingsPath: o.ConfigPath, PolicyPath: o.PolicyPath, Checks: checks, Logger: log,
		InForce: inForce, Kept: keep,
		OnOutsideChange: func(c config.OutsideChange) {
			if settings != nil {
				settings.outsideChanged(c)
			}
		}})
	eff := watcher.Current()
	if eff.SettingsErr != nil {
		return fmt.Errorf("settings %s: %w", o.ConfigPath, eff.SettingsErr)
	}
	if eff.Err != nil {
		log.Error("the organisation policy is unusable: no server will be connected", "err", eff.Err)
	}
	cfg := eff.Settings
	dataDir := o.DataDir
	if dataDir == "" {
		dataDir = filepath.Dir(o.ConfigPath)
	}
	v := vault.Open(vault.Options{Keyring: o.Keyring, Dir: filepath.Join(dataDir, "secrets")})
	token, err := v.LocalToken()
	if err != nil {
		return err
	}

	// One instance per user: the loopback port is the lock.
	ln, err := relay.Listen(cfg.Port)
	if err != nil {
		if !addrInUse(err) {
			return err
		}
		if ferr := bringForward(ctx, cfg.Port, token); ferr != nil {
			if errors.Is(ferr, portproof.ErrNotCountersign) {
				msg := fmt.Sprintf("Another program is using Countersign's port %d, so Countersign could not start. "+
					"Quit that program, or choose another port in %s, then start Countersign again.", cfg.Port, o.ConfigPath)
				log.Error(msg)
				if o.Notifier != nil {
					o.Notifier.Notify("Countersign could not start", msg)
				}
				return fmt.Errorf("could not start: %s", msg)
			}
			return fmt.Errorf("port %d is in use by another program (%v): set another port in %s", cfg.Port, ferr, o.ConfigPath)
		}
		log.Info("Countersign is already running: asked it to show its window")
		return ErrAlreadyRunning
	}
	closeLn := true
	defer func() {
		if closeLn {
			ln.Close()
		}
	}()

	auditPath := filepath.Join(dataDir, "audit.db")
	auditLog, err := audit.Open(auditPath, audit.Options{RetentionDays: eff.AuditRetentionDays, Logger: log})
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	defer auditLog.Close()
	// The log's head goes to the keychain after commits, off every call's
	// path, until after the app's stop event is written.
	anchorCtx, stopAnchor := context.WithCancel(context.Background())
	_, anchorDone := keepAnchor(anchorCtx, auditLog, v, auditPath, log)
	defer func() { stopAnchor(); anchorDone() }()
	export := newAuditExport(auditLog, dataDir, v, log)
	export.apply(context.Background(), eff)
	defer export.close()
	pinStore, err := pins.Open(filepath.Join(dataDir, "pins.json"))
	if err != nil {
		return err
	}

	// The interface is built after the core, but sign-in needs its browser
	// opener: openURL forwards to it once it exists.
	var uiRef atomic.Pointer[UI]
	openURL := func(u *url.URL) error {
		if p := uiRef.Load(); p != nil {
			return (*p).OpenURL(u)
		}
		return errors.New("the window is not ready yet")
	}
	authSvc := auth.New(auth.Options{Vault: v, OpenURL: openURL, Logger: log})
	defer authSvc.Close()

	// Call ids continue after the last run's, so "call 12" names one call.
	q := gate.New(gate.Options{Timeout: eff.ApprovalTimeout, GrantWindow: eff.Policy.RetryWindow(), LastID: auditLog.LastCallID()})
	g := guard.New(guard.Options{Queue: q, Audit: auditLog, Pins: pinStore, Logger: log,
		AuditFailed: func(err error) {
			if o.Notifier != nil {
				o.Notifier.Notify("Countersign can't write its audit log", "Tool calls are denied until it can: "+err.Error())
			}
		}})
	var built atomic.Pointer[serverSet]
	set := applyServers(eff, authSvc, g, log)
	built.Store(&set)
	relayLim := LimitsFor(eff.Policy).relay()
	r, err := relay.New(relay.Options{
		Servers:        set.relay,
		Gate:           g,
		Filter:         g,
		Token:          token,
		Port:           cfg.Port,
		AllowedOrigins: cfg.AllowedOrigins,
		HostWait:       eff.Policy.HostWait(),
		Logger:         log,

		CallTimeout: relayLim.CallTimeout, MaxMessage: relayLim.MaxMessage, MaxInFlight: relayLim.MaxInFlight, MaxSessionsPerClient: relayLim.MaxSessionsPerClient,
	})
	if err != nil {
		q.Close()
		return err
	}

	// Goroutines the core owns end when the queue closes. Whatever way Run
	// returns, waiting calls are denied first.
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		q.Close()
		r.Close()
		wg.Wait()
	}()
	auditView := newAuditView(auditLog, auditPath, watcher.Current)
	auditView.anchor = func() (audit.Head, bool, error) { return auditanchor.Read(v, auditPath) }
	if o.Notifier != nil {
		sub := q.Subscribe()
		wg.Go(func() {
			defer sub.Close()
			// A click on a notification opens the review window.
			open := func() {
				if p := uiRef.Load(); p != nil {
					(*p).Show()
				}
			}
			notify.Watch(context.Background(), sub.Events(), o.Notifier, notify.Options{Logger: log, Open: open})
		})
	}

	store := config.NewStore(o.ConfigPath, config.StoreOptions{Checks: checks, Logger: log, Saved: watcher.Saved,
		Guard: func(old, next *config.Config) error { return watcher.Current().CheckEdit(old, next) }})
	settings = newSettings(settingsDeps{
		store:   store,
		current: watcher.Current,
		reload:  watcher.Reload,
		auth:    authSvc,
		queue:   q,
		audit:   auditLog,
		problems: func(id string) string {
			return built.Load().problems[id]
		},
		login:    defaultAutostart(o.ConfigPath),
		pins:     pinStore,
		outside:  watcher,
		notifier: o.Notifier,
		log:      log,
	})

	settings.reconcileLogin()
	if firstRun {
		settings.welcome(ctx)
	}

	// Settings and policy changes apply without a restart.
	wg.Go(func() { watcher.Run(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case eff := <-watcher.Updates():
				set := applyServers(eff, authSvc, g, log)
				built.Store(&set)
				if err := r.SetServers(set.relay); err != nil {
					log.Error("applying new settings", "err", err)
				}
				q.SetTimeout(eff.ApprovalTimeout)
				q.SetGrantWindow(eff.Policy.RetryWindow())
				r.SetHostWait(eff.Policy.HostWait())
				r.SetLimits(LimitsFor(eff.Policy).relay())
				auditLog.SetRetentionDays(eff.AuditRetentionDays)
				export.apply(context.Background(), eff)
				settings.reconcileLogin()
				log.Info("settings applied", "servers", serverList(set))
			}
		}
	})

	bridge, err := DefaultBridgePath()
	if err != nil {
		log.Warn("finding countersign-bridge: Claude Desktop can't be connected", "err", err)
	}
	bridgeConfig := ""
	if def, err := config.DefaultPath(); err != nil || def != o.ConfigPath {
		bridgeConfig, _ = filepath.Abs(o.ConfigPath)
	}
	connect := NewConnect(ConnectDeps{Current: watcher.Current, BridgePath: bridge, ConfigPath: bridgeConfig, Port: cfg.Port, Token: token, Audit: auditLog, Log: log})
	if err := connect.MakeFilesPrivate(ctx); err != nil {
		log.Warn("checking AI apps' configuration files for Countersign's access key", "err", err)
	}
	ui, err := o.NewUI(Core{Queue: q, Settings: settings, Audit: auditView, Connect: connect, Logger: log, FirstRun: firstRun,
		AuditExportBehind: export.behind})
	if err != nil {
		return fmt.Errorf("starting the interface: %w", err)
	}
	uiRef.Store(&ui)

	lim := o.limits.orDefaults()
	hs := newServer(&front{relay: r, show: ui.Show, token: token, port: cfg.Port}, lim)
	serveErr := make(chan error, 1)
	closeLn = false
	go func() { serveErr <- hs.Serve(limitListener(ln, lim)) }()
	log.Info("Countersign is listening", "addr", ln.Addr().String(), "servers", serverList(set))
	auditLog.Append(ctx, audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp})

	var failed error
	wg.Go(func() {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				failed = err
				log.Error("the loopback listener failed", "err", err)
				cancel()
			}
		case <-ctx.Done():
		}
	})

	uiErr := ui.Run(ctx)
	cancel()

	log.Info("shutting down: calls still waiting are denied")
	q.Close()
	r.Close()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("closing the listener", "err", err)
	}
	auditLog.Append(context.Background(), audit.Event{Kind: audit.KindAppStopped, Actor: audit.ActorApp})
	switch {
	case uiErr != nil:
		return fmt.Errorf("the approval interface stopped: %w", uiErr)
	case failed != nil:
		return failed
	}
	return nil
}

// applyServers builds the servers of eff, registers their sign-in settings
// and hands their policies to the guard.
func applyServers(eff *config.Effective, authSvc *auth.Service, g *guard.Guard, log *slog.Logger) serverSet {
	set := buildServers(eff, authSvc.Client, log)
	for id, sa := range set.auth {
		if err := authSvc.Register(id, sa); err != nil {
			log.Warn("setting up sign-in", "server", id, "err", err)
		}
	}
	for id, why := range set.problems {
		log.Warn("server not connected", "server", id, "why", why)
	}
	g.SetPolicies(set.policies)
	return set
}

func serverList(set serverSet) string {
	ids := make([]string, 0, len(set.relay))
	for _, s := range set.relay {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return "none connected"
	}
	return strings.Join(ids, ", ")
}

// Dialer opens upstream sessions to a configured server, whose messages
// may be up to maxAnswer bytes (zero: transport.DefaultMaxMessage).
func Dialer(s config.Server, maxAnswer int, log *slog.Logger) relay.Dialer {
	return func(ctx context.Context) (transport.Conn, error) {
		switch s.Transport {
		case config.TransportStdio:
			env := make([]string, 0, len(s.Env))
			for k, v := range s.Env {
				env = append(env, k+"="+v)
			}
			return transport.StartStdio(ctx, transport.StdioOptions{Command: s.Command, Args: s.Args, Env: env, MaxMessage: maxAnswer, Logger: log})
		case config.TransportSSE:
			return transport.DialLegacySSE(ctx, transport.HTTPOptions{URL: s.URL, MaxMessage: maxAnswer, Logger: log})
		case config.TransportStreamableHTTP:
			return transport.NewStreamableHTTP(transport.HTTPOptions{URL: s.URL, MaxMessage: maxAnswer, Logger: log}), nil
		}
		return nil, fmt.Errorf("server %s: unknown transport %q", s.ID, s.Transport)
	}
}
