package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// childEnv, when set to a settings path, makes the test binary run the app
// on it until it is killed (see TestMain). The data folder is in
// childDataEnv.
const (
	childEnv     = "COUNTERSIGN_RELIABILITY_CHILD"
	childDataEnv = "COUNTERSIGN_RELIABILITY_CHILD_DATA"
)

// runChildApp runs the app with a scripted person who approves calls whose
// message starts "run:" and leaves the others waiting. It prints the local
// token of its test keychain, then a line for each call it sees.
func runChildApp() {
	kr := vaulttest.NewKeyring()
	token, err := vault.Open(vault.Options{Keyring: kr}).LocalToken()
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Printf(format+"\n", args...)
		out.Unlock()
	}
	say("TOKEN %s", token)
	err = app.Run(context.Background(), app.Options{
		ConfigPath: os.Getenv(childEnv),
		PolicyPath: filepath.Join(filepath.Dir(os.Getenv(childEnv)), "no-policy.json"),
		DataDir:    os.Getenv(childDataEnv),
		Keyring:    kr,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewUI: func(c app.Core) (app.UI, error) {
			startApprover(c.Queue, func(call gate.Call) {
				msg := argMessage(call.Arguments)
				if strings.HasPrefix(msg, "run:") {
					c.Queue.Decide(call.ID, gate.Decision{Approve: true})
				}
				say("SEEN %s", msg)
			})
			return fakeUI{}, nil
		},
	})
	say("ERROR %v", err)
	os.Exit(1)
}

// TestKilledWithCallsWaitingAndRunning: Countersign is killed (SIGKILL)
// while calls wait for the person and approved calls run at the server,
// and started again on the same data. The chain verifies, every call the
// killed run left half-done ends in the audit, and no call id names two
// calls.
func TestKilledWithCallsWaitingAndRunning(t *testing.T) {
	enabled(t)
	mem := startMemUpstream(t)
	s := newSetup(t, httpServer("mem", mem.url))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+s.cfgPath, childDataEnv+"="+s.dataDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("the app stopped")
				}
				if v, ok := strings.CutPrefix(l, prefix); ok {
					return v
				}
				if strings.HasPrefix(l, "ERROR") {
					t.Fatal(l)
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("waited a minute for %q from the app", prefix)
			}
		}
	}
	token := next("TOKEN ")
	waitFor(t, "the app to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	hc := newClient(t)
	h := &host{url: fmt.Sprintf("http://127.0.0.1:%d/servers/mem/mcp", s.port), token: token, hc: hc}
	if err := h.open(context.Background(), "reliability-host"); err != nil {
		t.Fatal(err)
	}
	const waiting, running = 6, 4
	var wg sync.WaitGroup
	answers := make([][]message, waiting+running)
	for i := range waiting {
		wg.Go(func() {
			answers[i], _ = h.call(context.Background(), i+1, "echo", map[string]string{"message": fmt.Sprintf("wait:%d", i)})
		})
	}
	for i := range running {
		wg.Go(func() {
			answers[waiting+i], _ = h.call(context.Background(), 100+i, "hang", map[string]string{"message": fmt.Sprintf("run:%d", i)})
		})
	}
	for range waiting + running {
		next("SEEN ")
	}
	waitFor(t, "the approved calls to reach the server", func() bool {
		for i := range running {
			if mem.rec.count(fmt.Sprintf("run:%d", i)) != 1 {
				return false
			}
		}
		return true
	})
	killed = true
	cmd.Process.Kill()
	cmd.Wait()
	hc.CloseIdleConnections()
	wg.Wait()

	// Every call was still waiting or running when the app was killed.
	// (Opening the audit here would already end them: see audit.Open.)
	for i, a := range answers {
		if len(a) != 0 {
			t.Fatalf("call %d was answered before the kill: the test did not kill it half-done", i)
		}
	}

	in := startApp(t, s)
	if err := in.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	recs := auditRecords(t, s.dataDir) // verifies the chain
	checkCallIDsUnique(t, recs)
	checkEveryCallEnds(t, recs)
}
