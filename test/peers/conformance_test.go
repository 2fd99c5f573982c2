package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/vault"
)

// A conformance suite: one pinned release of @modelcontextprotocol/conformance.
type cfSuite struct {
	name string // the release, as the table shows it
	dir  string // its folder under node_modules
}

var cfSuites = []cfSuite{
	{"0.1.16", "@modelcontextprotocol/conformance"},
	{"0.2.0-alpha.12", "conformance-next"},
}

// A conformance path: one way from the conformance client to
// server-everything.
type cfPath struct {
	name   string
	url    string
	bearer bool      // the endpoint wants Countersign's local token
	person *approver // the scripted person behind the relay, if any
}

// The paths in table order. direct is the baseline every other path must
// match.
var cfPathNames = []string{"direct", "relay-http", "relay-sse", "relay-stdio", "bridge", "supergateway-alone"}

// rebindingScenario sends Host and Origin evil.example.com, then a request
// with the right Host that must be accepted.
const rebindingScenario = "dns-rebinding-protection"

// cfCheck is one entry of a scenario's checks.json.
type cfCheck struct {
	ID           string          `json:"id"`
	Status       string          `json:"status"`
	ErrorMessage string          `json:"errorMessage"`
	Details      json.RawMessage `json:"details"`
}

// cfResult is one scenario's outcome on one path.
type cfResult struct {
	ran    bool
	pass   bool
	note   string // why the CLI could not run the scenario
	checks []cfCheck
}

func (r cfResult) cell() string {
	switch {
	case !r.ran:
		return "—"
	case !r.pass && len(r.checks) == 0:
		return "ERROR"
	case r.pass:
		return "pass"
	}
	return "FAIL"
}

// failed lists the failed checks as "id: message".
func (r cfResult) failed() []string {
	if !r.ran {
		return []string{"no result: the scenario did not finish"}
	}
	var out []string
	if !r.pass && r.note != "" {
		out = append(out, r.note)
	}
	for _, c := range r.checks {
		if c.Status == "FAILURE" {
			out = append(out, c.ID+": "+c.ErrorMessage)
		}
	}
	return out
}

// TestConformanceMatrix runs every server scenario of both pinned
// conformance suites against server-everything directly and through each
// path: the relay in front of its Streamable HTTP, SSE and stdio transports,
// countersign-bridge (the real binary, behind supergateway's HTTP face, in
// front of the relay) and supergateway alone as a baseline for the bridge.
// Every scenario that passes directly must pass on every path; through the
// relay, DNS rebinding protection must pass too. The person behind each
// relay approves every call through the gate.
func TestConformanceMatrix(t *testing.T) {
	dir := peersDir(t)
	out := filepath.Join(dir, "out", "conformance")
	os.RemoveAll(out)

	paths := map[string]*cfPath{}
	paths["direct"] = &cfPath{name: "direct", url: startEverything(t, dir, "streamableHttp")}
	for name, mode := range map[string]string{"relay-http": "streamableHttp", "relay-sse": "sse", "relay-stdio": "stdio"} {
		endpoint, person := startRelay(t, everythingUpstream(t, dir, mode), approveAll)
		paths[name] = &cfPath{name: name, url: endpoint, bearer: true, person: person}
	}
	paths["bridge"] = startBridgePath(t, dir)
	paths["supergateway-alone"] = &cfPath{name: "supergateway-alone",
		url: startSupergateway(t, dir, "node "+testenv.EverythingJS(dir)+" stdio", nil)}

	scenarios := map[string][]string{}
	for _, s := range cfSuites {
		scenarios[s.name] = listScenarios(t, dir, s)
	}

	// Every suite on every path, each in one CLI process, all side by side:
	// the scenarios mostly wait on the network, and one process per suite
	// costs far less CPU than one per scenario.
	start := time.Now()
	var jobs []cfJob
	for _, pn := range cfPathNames {
		for _, s := range cfSuites {
			jobs = append(jobs, cfJob{suite: s, path: paths[pn]})
		}
	}
	runJobs(t, dir, out, jobs)
	t.Logf("conformance matrix ran in %v", time.Since(start).Round(time.Second))
	results := map[string]map[string]map[string]cfResult{} // suite → path → scenario
	for _, s := range cfSuites {
		results[s.name] = map[string]map[string]cfResult{}
		for _, pn := range cfPathNames {
			results[s.name][pn] = readResults(filepath.Join(out, pn, s.name))
		}
	}

	// Judge: what passes directly must pass through Countersign on every
	// path; through the relay, DNS rebinding protection too.
	// supergateway-alone is a baseline, reported but not required.
	var report strings.Builder
	for _, s := range cfSuites {
		res := results[s.name]
		fmt.Fprintf(&report, "\n### conformance %s: %d server scenarios\n\n", s.name, len(scenarios[s.name]))
		fmt.Fprintf(&report, "| scenario | %s |\n|---|%s\n", strings.Join(cfPathNames, " | "), strings.Repeat("---|", len(cfPathNames)))
		var notes, failedDirect []string
		for _, sc := range scenarios[s.name] {
			direct := res["direct"][sc]
			if !direct.pass {
				failedDirect = append(failedDirect, sc)
			}
			var cells []string
			for _, pn := range cfPathNames {
				r := res[pn][sc]
				cell := r.cell()
				required := pn != "direct" && pn != "supergateway-alone" &&
					(direct.pass || (sc == rebindingScenario && strings.HasPrefix(pn, "relay-")))
				why := ""
				if required && !r.pass {
					why = r.knownUpstream(s.name, sc, pn)
				}
				switch {
				case why != "":
					cell += "‡"
					notes = append(notes, fmt.Sprintf("‡ %s on %s: %s", sc, pn, why))
				case required && !r.pass:
					t.Errorf("conformance %s: scenario %s passes directly but fails through %s:\n  %s",
						s.name, sc, pn, strings.Join(r.failed(), "\n  "))
				case required && sc == rebindingScenario:
					if err := r.refusedForHost(); err != nil {
						t.Errorf("conformance %s: %s through %s: %v", s.name, sc, pn, err)
					}
				}
				cells = append(cells, cell)
			}
			fmt.Fprintf(&report, "| %s | %s |\n", sc, strings.Join(cells, " | "))
		}
		if len(notes) > 0 {
			fmt.Fprintf(&report, "\n%s\n", strings.Join(notes, "\n"))
		}
		fmt.Fprintf(&report, "\nFail directly against server-everything, so not required on any path (%d): %s\n",
			len(failedDirect), strings.Join(failedDirect, ", "))
	}
	for _, name := range []string{"relay-http", "relay-sse", "relay-stdio", "bridge"} {
		if len(paths[name].person.tools()) == 0 {
			t.Errorf("%s: no tool call was held for the person", name)
		}
	}
	t.Log(report.String())
	if err := os.MkdirAll(out, 0o755); err == nil {
		os.WriteFile(filepath.Join(out, "matrix.md"), []byte(report.String()), 0o644)
	}
}

// refusedForHost checks the DNS rebinding request was refused with 403 for
// its Host or Origin, not with 401 for a missing token.
func (r cfResult) refusedForHost() error {
	for _, c := range r.checks {
		if c.ID != "localhost-host-rebinding-rejected" {
			continue
		}
		var d struct {
			StatusCode int `json:"statusCode"`
		}
		json.Unmarshal(c.Details, &d)
		if d.StatusCode != http.StatusForbidden {
			return fmt.Errorf("the rebinding request got HTTP %d, want 403", d.StatusCode)
		}
		return nil
	}
	return errors.New("no localhost-host-rebinding-rejected check")
}

// knownUpstream explains a failure that is server-everything's over the
// relay's upstream transport rather than Countersign's, when the checks
// show exactly that and nothing else failed; otherwise it returns "".
//
// input-required-result-validate-input (0.2.0-alpha.12) sends sessionless
// 2026-07-28 tools/call requests and wants an error back. server-everything's
// Streamable HTTP transport refuses them ("Server not initialized"), so the
// scenario passes directly by accident. Over stdio and SSE, where the relay
// opens an upstream connection without initialize for a sessionless
// request, server-everything answers them with a 2025 CallToolResult, which
// has no resultType; supergateway alone in front of server-everything stdio
// fails the same way.
func (r cfResult) knownUpstream(suite, scenario, path string) string {
	if suite != "0.2.0-alpha.12" || scenario != "input-required-result-validate-input" || (path != "relay-sse" && path != "relay-stdio") {
		return ""
	}
	matched := false
	for _, c := range r.checks {
		if c.Status != "FAILURE" {
			continue
		}
		var d struct {
			Violations []struct {
				Errors []string `json:"errors"`
			} `json:"violations"`
		}
		if c.ID != "wire-schema-valid" || json.Unmarshal(c.Details, &d) != nil || len(d.Violations) == 0 {
			return ""
		}
		for _, v := range d.Violations {
			if len(v.Errors) != 1 || !strings.HasPrefix(v.Errors[0], "CallToolResult: must have required property 'resultType'") {
				return ""
			}
		}
		matched = true
	}
	if !matched {
		return ""
	}
	return "server-everything over " + strings.TrimPrefix(path, "relay-") + " answers a sessionless 2026-07-28 tools/call sent without initialize " +
		"with a 2025 result that lacks resultType (over Streamable HTTP it refuses it, so the scenario passes directly by accident; " +
		"supergateway-alone fails the same way): the relay forwards sessionless 2026-07-28 requests to an upstream that never negotiated that version"
}

// cfCommand is the conformance CLI of s under the Node 22 from npm, with the
// loopback and bearer preloads.
func cfCommand(ctx context.Context, dir string, s cfSuite, args ...string) *exec.Cmd {
	cli := filepath.Join(dir, "node_modules", s.dir, "dist", "index.js")
	node := filepath.Join(dir, "node_modules", ".bin", "node")
	all := append([]string{"--require", filepath.Join(dir, "loopback.cjs"), "--require", filepath.Join(dir, "bearer.cjs"), cli}, args...)
	cmd := exec.CommandContext(ctx, node, all...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.WaitDelay = 5 * time.Second
	testenv.DieWithTest(cmd, syscall.SIGKILL)
	return cmd
}

var scenarioLine = regexp.MustCompile(`(?m)^  - (\S+)`)

// listScenarios lists the server scenarios of s.
func listScenarios(t *testing.T, dir string, s cfSuite) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := cfCommand(ctx, dir, s, "list", "--server").Output()
	if err != nil {
		t.Fatalf("conformance %s list: %v", s.name, err)
	}
	var names []string
	for _, m := range scenarioLine.FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	if len(names) == 0 {
		t.Fatalf("conformance %s lists no server scenarios:\n%s", s.name, b)
	}
	return names
}

// A cfJob runs every server scenario of one suite on one path.
type cfJob struct {
	suite cfSuite
	path  *cfPath
}

// runJobs runs jobs side by side, each CLI process under a deadline; every
// scenario's checks.json lands in out/<path>/<suite>/, and a scenario the
// CLI could not run leaves its reason in an error.txt beside them.
func runJobs(t *testing.T, dir, out string, jobs []cfJob) {
	t.Helper()
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			log, err := runJob(dir, filepath.Join(out, j.path.name, j.suite.name), j)
			if err != nil {
				t.Errorf("conformance %s on %s: %v\n%s", j.suite.name, j.path.name, err, log)
			}
			t.Logf("conformance %s on %s: %v", j.suite.name, j.path.name, time.Since(start).Round(time.Second))
		}()
	}
	wg.Wait()
}

var runFailed = regexp.MustCompile(`(?m)^Failed to run scenario (\S+): (.*)$`)

// runJob runs the conformance CLI for j, writing results under out. It
// returns an error, with the CLI's output, only when the CLI could not run
// or ran out of time; failed scenarios are results.
func runJob(dir, out string, j cfJob) (string, error) {
	const timeout = 6 * time.Minute
	args := []string{"server", "--url", j.path.url, "--suite", "all", "-o", out}
	if j.suite.name != "0.1.16" {
		args = append(args, "--timeout", "60000") // per scenario
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := cfCommand(ctx, dir, j.suite, args...)
	if j.path.bearer {
		cmd.Env = append(cmd.Env, "BEARER_TOKEN="+j.path.tokenValue())
	}
	b, err := cmd.CombinedOutput()
	for _, m := range runFailed.FindAllSubmatch(b, -1) {
		d := filepath.Join(out, "server-"+string(m[1])+"-error")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "error.txt"), m[2], 0o644)
	}
	if ctx.Err() != nil {
		return string(b), fmt.Errorf("no answer within %v", timeout)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return string(b), err
	}
	return string(b), nil
}

var resultDir = regexp.MustCompile(`^server-(.+)-(?:\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z|error)$`)

// readResults reads every scenario result under dir (out/<path>/<suite>).
func readResults(dir string) map[string]cfResult {
	res := map[string]cfResult{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		m := resultDir.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, e.Name(), "error.txt")); err == nil {
			res[m[1]] = cfResult{ran: true, note: "the CLI could not run it: " + string(b)}
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "checks.json"))
		if err != nil {
			continue // the CLI gave up on the scenario: error.txt says why
		}
		var checks []cfCheck
		if json.Unmarshal(b, &checks) != nil {
			continue
		}
		r := cfResult{ran: true, pass: true, checks: checks}
		for _, c := range checks {
			if c.Status == "FAILURE" {
				r.pass = false
			}
		}
		res[m[1]] = r
	}
	return res
}

// tokenValue is the token the path's endpoint wants.
func (p *cfPath) tokenValue() string {
	if p.person != nil && p.person.token != "" {
		return p.person.token
	}
	return token
}

// startSupergateway runs supergateway on loopback, giving the stdio server
// command an HTTP face (stateful Streamable HTTP), and returns its URL.
func startSupergateway(t *testing.T, dir, command string, env []string) string {
	t.Helper()
	port := testenv.FreePort(t)
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", "node"),
		"--require", filepath.Join(dir, "loopback.cjs"),
		filepath.Join(dir, "node_modules", "supergateway", "dist", "index.js"),
		"--stdio", command, "--outputTransport", "streamableHttp", "--stateful",
		"--port", strconv.Itoa(port), "--logLevel", "none")
	cmd.Env = append(os.Environ(), env...)
	testenv.DieWithTest(cmd, syscall.SIGTERM) // supergateway then stops its children
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM lets supergateway stop the children it started in their
		// own process groups; a kill would leave them running.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	testenv.WaitListening(t, port, "supergateway", &stderr)
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/mcp"
}

// startBridgePath builds the real countersign-bridge, gives it a settings
// file naming the relay's port and a private Secret Service holding the
// local token, and puts supergateway's HTTP face on it: the conformance
// client → supergateway → countersign-bridge → relay → server-everything.
func startBridgePath(t *testing.T, dir string) *cfPath {
	t.Helper()
	bus, tok, bin := bridgeWithToken(t)
	endpoint, person := startRelayWithToken(t, everythingUpstream(t, dir, "streamableHttp"), tok, approveAll)
	person.token = tok
	port, err := relayPort(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Port = port
	cfg.Servers = []config.Server{{ID: "everything", Transport: config.TransportStreamableHTTP, URL: "http://127.0.0.1:1/mcp"}}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(settings, b, 0o600); err != nil {
		t.Fatal(err)
	}
	url := startSupergateway(t, dir, bin+" -config "+settings+" everything", []string{"DBUS_SESSION_BUS_ADDRESS=" + bus})
	return &cfPath{name: "bridge", url: url, person: person}
}

// bridgeWithToken starts a private Secret Service for this process (its
// bus address is set in the environment, before the vault's first use),
// has it hold a local token, and builds countersign-bridge: the bus
// address, the token and the bridge's path.
func bridgeWithToken(t *testing.T) (bus, tok, bin string) {
	t.Helper()
	bus = startSecretService(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus)
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// gnome-keyring takes a moment to claim its name on the bus.
		if tok, err = vault.New().LocalToken(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the private Secret Service would not hold the local token: %v", err)
	}
	bin = filepath.Join(t.TempDir(), "countersign-bridge")
	build := exec.Command("go", "build", "-o", bin, "github.com/countersign/countersign/cmd/countersign-bridge")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building countersign-bridge: %v\n%s", err, b)
	}
	return bus, tok, bin
}

func relayPort(endpoint string) (int, error) {
	hostPort, _, _ := strings.Cut(strings.TrimPrefix(endpoint, "http://"), "/")
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// startSecretService runs a private D-Bus session bus with an unlocked
// gnome-keyring on it, so the bridge reads its token from a real Secret
// Service without touching the person's keychain or racing other tests for
// the session's. It returns the bus address.
func startSecretService(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"dbus-daemon", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing: CI must install dbus and gnome-keyring (scripts/test does)", bin)
			}
			t.Skipf("%s is missing: the bridge path needs a real Secret Service", bin)
		}
	}
	tmp := t.TempDir()
	home, runtimeDir := filepath.Join(tmp, "home"), filepath.Join(tmp, "run")
	os.Mkdir(home, 0o700)
	os.Mkdir(runtimeDir, 0o700)
	addr := "unix:path=" + filepath.Join(tmp, "bus")
	daemon := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--address="+addr)
	// Both daemons write their output here from their own copying
	// goroutines, and a failure reads it meanwhile.
	var log testenv.LockedBuffer
	daemon.Stdout, daemon.Stderr = &log, &log
	testenv.DieWithTest(daemon, syscall.SIGKILL)
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(tmp, "bus")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dbus-daemon did not start: %s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Like scripts/test: the daemon reads the password, unlocks its login
	// keyring, then forks into the background and this command returns. It
	// ends with the bus, which the cleanup above kills.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keyring := exec.CommandContext(ctx, "gnome-keyring-daemon", "--unlock", "--components=secrets")
	keyring.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr, "HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_RUNTIME_DIR="+runtimeDir)
	keyring.Stdin = strings.NewReader("countersign-test")
	keyring.Stdout, keyring.Stderr = &log, &log
	keyring.WaitDelay = 3 * time.Second // in case the daemon keeps our pipes
	if err := keyring.Run(); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("gnome-keyring-daemon: %v\n%s", err, log.String())
	}
	return addr
}
