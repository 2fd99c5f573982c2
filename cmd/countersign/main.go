// Command countersign is the Countersign tray app: it relays MCP between AI
// apps and upstream servers and asks the person to approve every tool call
// in its review window.
//
//	countersign [-config FILE] [-v] [run | token | version | audit verify [FILE] | policy show | policy hosts]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/countersign/countersign/assets"
	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auditanchor"
	"github.com/countersign/countersign/internal/buildinfo"
	"github.com/countersign/countersign/internal/config"
	_ "github.com/countersign/countersign/internal/langenv" // before Fyne initialises: LANG=C.UTF-8
	"github.com/countersign/countersign/internal/notify"
	"github.com/countersign/countersign/internal/vault"
)

func main() {
	configPath := flag.String("config", "", "settings file (default: the OS config directory)")
	verbose := flag.Bool("v", false, "log debug detail")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: countersign [-config FILE] [-v] [run | token | version | audit verify [FILE] | policy show | policy hosts]\n")
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
		if err := haveDisplay(); err != nil {
			fail(err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := app.Run(ctx, app.Options{
			ConfigPath: *configPath,
			Logger:     log,
			NewUI:      newUI,
			Notifier:   notify.NewDesktop("Countersign", assets.Tray),
		})
		if errors.Is(err, app.ErrAlreadyRunning) {
			fmt.Fprintln(os.Stderr, "countersign: already running; its window was brought forward")
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "countersign:", err)
			if !uiBuilt {
				showStartFailure(err)
			}
			os.Exit(1)
		}
	case "token":
		tok, err := vault.New().LocalToken()
		if err != nil {
			fail(err)
		}
		fmt.Println(tok)
	case "version":
		fmt.Println("countersign", buildinfo.Version)
	case "audit":
		if flag.Arg(1) != "verify" || flag.NArg() > 3 {
			flag.Usage()
			os.Exit(2)
		}
		path := flag.Arg(2)
		if path == "" {
			path = filepath.Join(filepath.Dir(*configPath), "audit.db")
		}
		os.Exit(verifyAudit(path, vault.Open(vault.Options{Dir: filepath.Join(filepath.Dir(path), "secrets")})))
	case "policy":
		switch {
		case flag.NArg() == 2 && flag.Arg(1) == "show":
			os.Exit(showPolicy(os.Stdout))
		case flag.NArg() == 2 && flag.Arg(1) == "hosts":
			os.Exit(showHostSnippets(os.Stdout, *configPath))
		}
		flag.Usage()
		os.Exit(2)
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "countersign:", err)
	os.Exit(1)
}

// verifyAudit walks the audit log's hash chain, checks its end against the
// copy kept in the keychain st, and prints the result: exit status 0 when
// it is intact, 1 when it names a broken event or cut-off events, 2 when it
// could not be checked.
func verifyAudit(path string, st auditanchor.Store) int {
	head, found, anchorErr := auditanchor.Read(st, path)
	rep, err := audit.VerifyFileHead(context.Background(), path, head)
	if err != nil {
		fmt.Fprintf(os.Stderr, "countersign: could not verify %s: %v\n", path, err)
		return 2
	}
	fmt.Println(rep.String())
	switch {
	case anchorErr != nil:
		fmt.Printf("the end of the log could not be checked: the anchor is unavailable (%v)\n", anchorErr)
	case !found:
		fmt.Println("the end of the log could not be checked: no anchor is kept in the keychain for this file")
	case rep.OK():
		fmt.Printf("the log reaches its anchor in the keychain (event %d)\n", head.ID)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}
