// Package app wires Countersign together and owns its lifecycle: settings,
// the local token, the approval gate, the relay and its loopback listener,
// and an orderly shutdown that denies whatever is still waiting.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
	"github.com/countersign/countersign/internal/vault"
)

// Approver is the person-facing interface that decides calls: it runs until
// ctx ends. It is the only thing that may call the queue's Decide.
type Approver func(ctx context.Context, q *gate.Queue, cfg *config.Config) error

// Options configure Run.
type Options struct {
	ConfigPath string
	Logger     *slog.Logger
	Approver   Approver
	Vault      *vault.Vault // nil means the OS keychain
}

// Run serves until ctx ends or the approver stops, then shuts down.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Approver == nil {
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
	q := gate.New(gate.Options{Timeout: time.Duration(cfg.ApprovalTimeout)})
	defer q.Close()

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
		return err
	}
	ln, err := relay.Listen(cfg.Port)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d is in use: is Countersign already running? (%w)", cfg.Port, err)
		}
		return err
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("Countersign is listening", "addr", ln.Addr().String(), "servers", serverList(cfg))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	approverErr := make(chan error, 1)
	go func() { approverErr <- o.Approver(ctx, q, cfg) }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-approverErr:
		runErr = fmt.Errorf("the approval interface stopped: %w", err)
	case err := <-serveErr:
		runErr = err
	}
	log.Info("shutting down: calls still waiting are denied")
	q.Close()
	r.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	hs.Shutdown(sctx)
	cancel()
	return runErr
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
