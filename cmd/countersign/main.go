// Command countersign is the Countersign app: it relays MCP between AI apps
// and upstream servers and asks the person to approve every tool call.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/console"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/vault"
)

var version = "dev"

func main() {
	configPath := flag.String("config", "", "settings file (default: the OS config directory)")
	verbose := flag.Bool("v", false, "log debug detail")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: countersign [-config FILE] [-v] [run | token | version]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *configPath == "" {
		p, err := config.DefaultPath()
		if err != nil {
			fail(err)
		}
		*configPath = p
	}
	switch cmd := flag.Arg(0); cmd {
	case "", "run":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := app.Run(ctx, app.Options{ConfigPath: *configPath, Logger: log, Approver: askOnTerminal})
		if err != nil {
			fail(err)
		}
	case "token":
		tok, err := vault.New().LocalToken()
		if err != nil {
			fail(err)
		}
		fmt.Println(tok)
	case "version":
		fmt.Println("countersign", version)
	default:
		flag.Usage()
		os.Exit(2)
	}
}

// askOnTerminal is the interim approval interface: a prompt on the
// controlling terminal.
func askOnTerminal(ctx context.Context, q *gate.Queue, cfg *config.Config) error {
	tty, err := console.OpenTTY()
	if err != nil {
		return err
	}
	defer tty.Close()
	names := func(id string) string {
		if s, ok := cfg.Server(id); ok {
			return s.DisplayName()
		}
		return id
	}
	return console.Run(ctx, q.Subscribe(), q, tty, names)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "countersign:", err)
	os.Exit(1)
}
