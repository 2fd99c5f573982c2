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
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/notify"
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
}

// Core is what the interface is built on.
type Core struct {
	Queue    *gate.Queue
	Settings *Settings
	Audit    *SessionLog
	Logger   *slog.Logger
}

// Options configure Run.
type Options struct {
	ConfigPath string
	Logger     *slog.Logger
	// NewUI builds the interface on the core. It is required: Countersign
	// does not serve without a way for a person to decide.
	NewUI func(Core) (UI, error)
	// Notifier shows a notification when calls start waiting; nil for none.
	Notifier notify.Notifier
	Vault    *vault.Vault // nil means the OS keychain
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
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	v := o.Vault
	if v == nil {
		v = vault.New()
	}
	token, err := v.LocalToken()
	if err != nil {
		return err
	}

	// One instance per user: the loopback port is the lock.
	ln, err := relay.Listen(cfg.Port)
	if err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		if ferr := bringForward(ctx, cfg.Port, token); ferr != nil {
			return fmt.Errorf("port %d is in use by another program (%v): set another port in %s", cfg.Port, ferr, o.ConfigPath)
		}
		log.Info("Countersign is already running: asked it to show its window")
		return ErrAlreadyRunning
	}

	q := gate.New(gate.Options{Timeout: time.Duration(cfg.ApprovalTimeout)})
	servers := make([]relay.Server, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		servers = append(servers, relay.Server{ID: s.ID, Name: s.DisplayName(), Dial: Dialer(s, log)})
	}
	r, err := relay.New(relay.Options{
		Servers:        servers,
		Gate:           q,
		Token:          token,
		Port:           cfg.Port,
		AllowedOrigins: cfg.AllowedOrigins,
		Logger:         log,
	})
	if err != nil {
		q.Close()
		ln.Close()
		return err
	}

	// Goroutines the core owns end when the queue closes. Whatever way Run
	// returns, waiting calls are denied first.
	var wg sync.WaitGroup
	defer func() {
		q.Close()
		r.Close()
		wg.Wait()
	}()
	audit := newSessionLog(sessionLogSize, cfg)
	auditSub := q.Subscribe()
	wg.Go(func() { audit.record(auditSub) })
	if o.Notifier != nil {
		sub := q.Subscribe()
		wg.Go(func() {
			defer sub.Close()
			notify.Watch(context.Background(), sub.Events(), o.Notifier, notify.Options{Logger: log})
		})
	}

	settings := newSettings(o.ConfigPath, cfg, q, log)
	ui, err := o.NewUI(Core{Queue: q, Settings: settings, Audit: audit, Logger: log})
	if err != nil {
		ln.Close()
		return fmt.Errorf("starting the interface: %w", err)
	}

	hs := &http.Server{
		Handler:           &front{relay: r, show: ui.Show, token: token, port: cfg.Port},
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("Countersign is listening", "addr", ln.Addr().String(), "servers", serverList(cfg))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
	switch {
	case uiErr != nil:
		return fmt.Errorf("the approval interface stopped: %w", uiErr)
	case failed != nil:
		return failed
	}
	return nil
}

func serverList(cfg *config.Config) string {
	ids := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return "none configured"
	}
	return strings.Join(ids, ", ")
}

// Dialer opens upstream sessions to a configured server.
func Dialer(s config.Server, log *slog.Logger) relay.Dialer {
	return func(ctx context.Context) (transport.Conn, error) {
		switch s.Transport {
		case config.TransportStdio:
			env := make([]string, 0, len(s.Env))
			for k, v := range s.Env {
				env = append(env, k+"="+v)
			}
			return transport.StartStdio(ctx, transport.StdioOptions{Command: s.Command, Args: s.Args, Env: env, Logger: log})
		case config.TransportSSE:
			return transport.DialLegacySSE(ctx, transport.HTTPOptions{URL: s.URL, Logger: log})
		case config.TransportStreamableHTTP:
			return transport.NewStreamableHTTP(transport.HTTPOptions{URL: s.URL, Logger: log}), nil
		}
		return nil, fmt.Errorf("server %s: unknown transport %q", s.ID, s.Transport)
	}
}
