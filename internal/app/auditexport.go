package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auditanchor"
	"github.com/countersign/countersign/internal/auditexport"
	"github.com/countersign/countersign/internal/buildinfo"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/vault"
)

// exportCursorFile is the audit export's position, beside the audit log.
const exportCursorFile = "audit-export.json"

// auditExport runs the audit export the admin policy asks for, and starts
// it again with new settings when the policy changes.
type auditExport struct {
	log    *audit.Log
	dir    string
	vault  *vault.Vault
	logger *slog.Logger

	mu      sync.Mutex
	set     auditexport.Settings
	running *auditexport.Exporter
	stop    func()
}

func newAuditExport(l *audit.Log, dataDir string, v *vault.Vault, logger *slog.Logger) *auditExport {
	return &auditExport{log: l, dir: dataDir, vault: v, logger: logger}
}

// exportSettings reads the export settings from the settings in force.
func exportSettings(eff *config.Effective) auditexport.Settings {
	if eff == nil || eff.Policy == nil || eff.Err != nil || eff.ExportEndpoint == "" {
		return auditexport.Settings{}
	}
	a := eff.Policy.Audit
	s := auditexport.Settings{Endpoint: eff.ExportEndpoint, Headers: a.ExportHeaders,
		KeychainHeaders: a.ExportKeychainHeaders, CAFile: a.ExportCAFile, Arguments: a.ExportArguments}
	for _, k := range a.ExportKinds {
		s.Kinds = append(s.Kinds, audit.Kind(k))
	}
	return s
}

// apply starts, restarts or stops the export to match eff.
func (x *auditExport) apply(ctx context.Context, eff *config.Effective) {
	set := exportSettings(eff)
	x.mu.Lock()
	defer x.mu.Unlock()
	if reflect.DeepEqual(set, x.set) && (x.running != nil) == (set.Endpoint != "") {
		return
	}
	if x.stop != nil {
		x.stop()
		x.running, x.stop = nil, nil
	}
	x.set = set
	if set.Endpoint == "" {
		return
	}
	e, err := auditexport.New(auditexport.Options{Source: x.log, Settings: set,
		CursorPath: filepath.Join(x.dir, exportCursorFile), Secret: x.vault.Get,
		Version: buildinfo.Version, Logger: x.logger})
	if err != nil {
		x.logger.Error("audit export: not started", "err", err)
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.Run(rctx) }()
	x.running = e
	x.stop = func() { cancel(); <-done }
	x.logger.Info("audit export started", "endpoint", set.Endpoint)
}

// close stops the export, waiting for a request in flight at most as long
// as the exporter's own timeout.
func (x *auditExport) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stop != nil {
		x.stop()
		x.running, x.stop = nil, nil
	}
}

// behind says how many events wait for a collector that is not accepting
// them, and why; zero while the export keeps up or is off.
func (x *auditExport) behind() (int64, string) {
	x.mu.Lock()
	e := x.running
	x.mu.Unlock()
	if e == nil {
		return 0, ""
	}
	st := e.Status()
	if st.Err == "" {
		return 0, "" // sending; a moment's lag is no news
	}
	return st.Behind, st.Err
}

// anchorWait bounds how long shutdown waits for the last keychain write.
const anchorWait = 5 * time.Second

// keepAnchor keeps the audit log's head in the keychain until ctx ends; the
// returned wait blocks until the last write (the app's stop event) is done,
// or anchorWait passed.
func keepAnchor(ctx context.Context, l *audit.Log, v *vault.Vault, path string, logger *slog.Logger) (k *auditanchor.Keeper, wait func()) {
	k = auditanchor.NewKeeper(l, v, path, logger)
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()
	return k, func() {
		select {
		case <-done:
		case <-time.After(anchorWait):
			logger.Warn("audit: the keychain did not take the log's anchor in time")
		}
	}
}
