// Command countersign-bridge connects an AI app that only starts stdio MCP
// servers (Claude Desktop) to the running Countersign app:
//
//	countersign-bridge [-config FILE] <server-id>
//
// It is a small console program with no cgo and no UI.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/countersign/countersign/internal/bridge"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/vault"
)

func main() {
	configPath := flag.String("config", "", "Countersign settings file (default: the OS config directory)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: countersign-bridge [-config FILE] <server-id>")
		flag.PrintDefaults()
	}
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	serverID := flag.Arg(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := setup(ctx, log, *configPath, serverID)
	if err != nil {
		// Nothing can fix this while the bridge runs: answer the AI app
		// until it gives up, then exit non-zero so it knows the server
		// failed.
		refuseAll(err)
		os.Exit(1)
	}
	b.In, b.Out, b.Log, b.Stderr = os.Stdin, os.Stdout, log, os.Stderr
	if err := b.Run(ctx); err != nil {
		log.Error("bridge stopped", "err", err)
		os.Exit(1)
	}
}

// setup reads the settings, starts the app when nothing answers on its
// port (the local token may not exist before the app's first start), then
// reads the token.
func setup(ctx context.Context, log *slog.Logger, configPath, serverID string) (*bridge.Bridge, error) {
	given := configPath
	if configPath == "" {
		p, err := config.DefaultPath()
		if err != nil {
			return nil, err
		}
		configPath = p
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.Server(serverID); !ok {
		return nil, fmt.Errorf("there is no server %q in the settings", serverID)
	}
	starter := bridge.NewStarter(cfg.Port, given)
	starter.Log = log
	startErr := starter.Ensure(ctx)
	if startErr != nil {
		// Carry on if the token is there: each request then says the app
		// is not running, and works once the person starts it.
		fmt.Fprintln(os.Stderr, "countersign-bridge:", startErr)
	}
	tok, err := vault.New().ExistingLocalToken()
	if err != nil {
		if startErr != nil {
			return nil, startErr
		}
		return nil, err
	}
	return &bridge.Bridge{
		URL:   "http://127.0.0.1:" + strconv.Itoa(cfg.Port) + "/servers/" + serverID + "/mcp",
		Token: tok,
		// A call in flight when the AI app closes may wait for the person
		// as long as the settings allow, then run.
		DrainTimeout: max(time.Duration(cfg.ApprovalTimeout)+time.Minute, bridge.DefaultDrainTimeout),
	}, nil
}

// refuseAll reports err on stderr and answers every request from the host
// with it, so the AI app can show why the server does not work.
func refuseAll(err error) {
	fmt.Fprintln(os.Stderr, "countersign-bridge:", err)
	b := &bridge.Bridge{In: os.Stdin, Out: os.Stdout}
	b.Refuse(jsonrpc.CodeConnectionClosed, "Countersign bridge: "+err.Error())
}
