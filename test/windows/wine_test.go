package windows

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testenv"
)

// Inputs, set by scripts/test-windows.
//
//	COUNTERSIGN_WINE=1               run at all
//	COUNTERSIGN_WINE_MSI             the per-machine MSI under test
//	COUNTERSIGN_WINE_USER_MSI        the per-user MSI of the same version
//	COUNTERSIGN_WINE_UPGRADE_MSI     a per-machine MSI with a higher version
//	COUNTERSIGN_WINE_UPGRADE_VERSION that higher version
//	COUNTERSIGN_WINE_SHIM            the test-only bcryptprimitives.dll
//	COUNTERSIGN_WINE_APPTEST         internal/app's tests built for Windows (optional)
const (
	runKey    = `HKLM\Software\Microsoft\Windows\CurrentVersion\Run`
	userRun   = `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`
	installed = `C:\Program Files\Countersign`
)

// wine is a private Wine prefix on a private X server.
type wine struct {
	t      *testing.T
	loader string // wine64
	prefix string
	out    string // logs and screenshots, kept
	env    []string
	peers  string
}

func TestInstalledOnWine(t *testing.T) {
	if os.Getenv("COUNTERSIGN_WINE") != "1" {
		t.Skip("set COUNTERSIGN_WINE=1 (scripts/test-windows does) to install and run the Windows build under Wine")
	}
	need := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("%s is not set (run scripts/test-windows)", name)
		}
		return v
	}
	msi, userMSI, upgradeMSI := need("COUNTERSIGN_WINE_MSI"), need("COUNTERSIGN_WINE_USER_MSI"), need("COUNTERSIGN_WINE_UPGRADE_MSI")
	upgradeVersion, shim := need("COUNTERSIGN_WINE_UPGRADE_VERSION"), need("COUNTERSIGN_WINE_SHIM")
	w := newWine(t, shim)
	appData := w.userDir("AppData", "Roaming")
	programFiles := w.unix(installed)

	// 0. internal/app's Windows-only tests, on Windows: the Run key, and a
	// taken port recognised as in use (WSAEADDRINUSE).
	if apptest := os.Getenv("COUNTERSIGN_WINE_APPTEST"); apptest != "" {
		out, err := w.run(5*time.Minute, apptest, "-test.run", "^(TestAddrInUse|TestRunKey.*)$", "-test.v")
		if err != nil || !strings.Contains(out, "--- PASS: TestAddrInUse") || !strings.Contains(out, "--- PASS: TestRunKeyMachineWide") {
			t.Fatalf("internal/app's tests under Wine: %v\n%s", err, out)
		}
		t.Log("internal/app's Windows tests pass under Wine")
	}

	// 1. An administrator's AUTOSTART=0 leaves the Run value out.
	w.msiexec("autostart0-install", "/i", msi, "AUTOSTART=0")
	w.mustExist(filepath.Join(programFiles, "countersign.exe"))
	if v, ok := w.regValue(runKey, "Countersign"); ok {
		t.Errorf("AUTOSTART=0 still wrote the Run value %q", v)
	}
	w.msiexec("autostart0-uninstall", "/x", msi)
	w.mustNotExist(filepath.Join(programFiles, "countersign.exe"))

	// 2. The per-user MSI: the person's own folders and Run key.
	w.msiexec("user-install", "/i", userMSI)
	userDir := w.userDir("AppData", "Local", "Programs", "Countersign")
	w.mustExist(filepath.Join(userDir, "countersign.exe"))
	w.mustExist(filepath.Join(userDir, "countersign-bridge.exe"))
	if v, ok := w.regValue(userRun, "Countersign"); !ok || !strings.Contains(strings.ToLower(v), `\programs\countersign\countersign.exe`) {
		t.Errorf("per-user Run value = %q (present %v), want the per-user countersign.exe", v, ok)
	}
	w.mustNotExist(filepath.Join(programFiles, "countersign.exe"))
	w.msiexec("user-uninstall", "/x", userMSI)
	w.mustNotExist(filepath.Join(userDir, "countersign.exe"))
	if _, ok := w.regValue(userRun, "Countersign"); ok {
		t.Error("the per-user uninstall left the Run value")
	}

	// 3. The per-machine MSI, silently, as device management installs it.
	w.msiexec("install", "/i", msi)
	exe := installed + `\countersign.exe`
	bridge := installed + `\countersign-bridge.exe`
	w.mustExist(filepath.Join(programFiles, "countersign.exe"))
	w.mustExist(filepath.Join(programFiles, "countersign-bridge.exe"))
	if v, ok := w.regValue(runKey, "Countersign"); !ok || v != `"`+exe+`"` {
		t.Errorf("HKLM Run value = %q (present %v), want %q", v, ok, `"`+exe+`"`)
	}
	shortcuts := w.find("Countersign.lnk")
	if len(shortcuts) == 0 {
		t.Error("no Start Menu shortcut Countersign.lnk anywhere in the prefix")
	}
	if got := strings.TrimSpace(w.output(exe, "version")); !strings.Contains(got, versionOf(t, msi)) {
		t.Errorf("installed countersign.exe version says %q, want %s", got, versionOf(t, msi))
	}
	// The policy Group Policy writes under HKLM, and never HKCU's.
	w.policyFromRegistry(exe)

	// 4. The installed app, with settings in the person's default place
	// naming a loopback server-everything.
	upstream := w.startUpstream()
	port := testenv.FreePort(t)
	settings := filepath.Join(appData, "Countersign", "settings.json")
	write(t, settings, fmt.Sprintf(`{"port": %d, "approvalTimeout": "2m", "servers": [
  {"id": "everything", "name": "Everything", "transport": "streamable-http", "url": "http://127.0.0.1:%d/mcp"}
]}`, port, upstream))
	app := w.start("app", exe)
	waitTCP(t, port)
	w.loopbackOnly(port)
	token := strings.TrimSpace(w.output(exe, "token"))
	if len(token) < 20 {
		t.Fatalf("countersign.exe token printed %q", token)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/servers/everything/mcp", port)
	w.refusals(url, port, token)

	// An SDK client's call opens the review window; approving gives the
	// client its result.
	call := w.client(url, token)
	win := w.waitWindow("Countersign: 1 waiting")
	shot := w.screenshot("review.png", func(img image.Image) bool { return painted(img, 640, 300) })
	t.Logf("screenshot of the installed app's review window: %s", shot)
	time.Sleep(time.Second) // past the guard against keys meant for a call that just arrived
	w.key(win, "ctrl+Return")
	if res := call.result(t); !res.OK || !strings.Contains(res.Detail, "hello relay") {
		t.Fatalf("approved call: %+v", res)
	}

	// The installed bridge relays from stdin to the running app.
	w.bridgeRoundTrip(bridge)

	// A second launch brings the first forward instead of failing to bind.
	msg, err := w.run(60*time.Second, exe)
	if err != nil || !strings.Contains(msg, "already running") || strings.Contains(msg, "10048") {
		t.Errorf("second launch: %v: %s", err, msg)
	}
	w.stop(app, port)

	// With the app stopped, the installed bridge starts the installed app
	// (the countersign.exe beside it) and carries on.
	w.bridgeRoundTrip(bridge)
	waitTCP(t, port)
	w.stop(nil, port)

	// 5. A newer MSI upgrades in place; the older one will not go back over it.
	w.msiexec("upgrade", "/i", upgradeMSI)
	if got := strings.TrimSpace(w.output(exe, "version")); !strings.Contains(got, upgradeVersion) {
		t.Errorf("after the upgrade countersign.exe says %q, want %s", got, upgradeVersion)
	}
	if n := w.installedProducts(); n != 1 {
		t.Errorf("%d Countersign products are registered after the upgrade, want 1", n)
	}
	if code := w.msiexecCode("downgrade", "/i", msi); code == 0 {
		t.Error("the older MSI installed over the newer one")
	}
	if got := strings.TrimSpace(w.output(exe, "version")); !strings.Contains(got, upgradeVersion) {
		t.Errorf("after the refused downgrade countersign.exe says %q, want %s", got, upgradeVersion)
	}

	// 6. Uninstall removes the program, shortcut and Run value, and leaves
	// the person's settings and audit log.
	w.msiexec("uninstall", "/x", upgradeMSI)
	w.mustNotExist(filepath.Join(programFiles, "countersign.exe"))
	w.mustNotExist(filepath.Join(programFiles, "countersign-bridge.exe"))
	if _, ok := w.regValue(runKey, "Countersign"); ok {
		t.Error("uninstall left the HKLM Run value")
	}
	if left := w.find("Countersign.lnk"); len(left) != 0 {
		t.Errorf("uninstall left the shortcut: %v", left)
	}
	w.mustExist(settings)
	audit := filepath.Join(appData, "Countersign", "audit.db")
	w.mustExist(audit)
}

func newWine(t *testing.T, shim string) *wine {
	loader, err := exec.LookPath("wine64")
	if err != nil {
		loader = "/usr/lib/wine/wine64"
	}
	if _, err := os.Stat(loader); err != nil {
		t.Fatal("wine64 is not installed (apt-get install wine64)")
	}
	peers, _ := filepath.Abs("../peers")
	out, _ := filepath.Abs("out")
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "countersign-wine-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Wine's last writes can race the first removal: try again.
		for range 10 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("could not remove %s", dir)
	})
	w := &wine{t: t, loader: loader, prefix: filepath.Join(dir, "prefix"), out: out, peers: peers}
	w.env = append(os.Environ(), "WINEPREFIX="+w.prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=",
		"HOME="+filepath.Join(dir, "home"), "LANG=en_US.UTF-8")
	os.MkdirAll(filepath.Join(dir, "home"), 0o700)

	// X server.
	r, pw, _ := os.Pipe()
	x := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-ac")
	x.ExtraFiles = []*os.File{pw}
	w.own("xvfb", x)
	pw.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("Xvfb did not start: %v", err)
	}
	w.env = append(w.env, "DISPLAY=:"+strings.TrimSpace(line))

	if _, err := w.run(5*time.Minute, "wineboot", "-i"); err != nil {
		t.Fatalf("wineboot: %v", err)
	}
	t.Cleanup(func() {
		// End every program of the prefix, then wait for wineserver to
		// finish writing the registry before the prefix is removed.
		for _, arg := range []string{"-k", "-w"} {
			k := exec.Command(wineserver(loader), arg)
			k.Env = w.env
			k.Run()
		}
	})
	// Go's runtime needs ProcessPrng, which Wine 8 lacks (see processprng.c).
	b, err := os.ReadFile(shim)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(w.prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll"), string(b))
	return w
}

// wineserver is the wineserver beside the loader (Debian keeps it off PATH).
func wineserver(loader string) string {
	for _, name := range []string{"wineserver", "wineserver64"} {
		if p := filepath.Join(filepath.Dir(loader), name); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("wineserver"); err == nil {
		return p
	}
	return "wineserver"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// own starts a process that lives as long as the test, logging to out.
func (w *wine) own(name string, cmd *exec.Cmd) *exec.Cmd {
	w.t.Helper()
	if cmd.Env == nil {
		cmd.Env = w.env
	}
	logf, err := os.Create(filepath.Join(w.out, name+".log"))
	if err != nil {
		w.t.Fatal(err)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("starting %s: %v", name, err)
	}
	w.t.Cleanup(func() { stopGroup(cmd); logf.Close() })
	return cmd
}

func stopGroup(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// start runs a Windows program in the prefix for as long as the test.
func (w *wine) start(name, exe string, args ...string) *exec.Cmd {
	return w.own(name, exec.Command(w.loader, append([]string{exe}, args...)...))
}

// stop ends the running countersign.exe (cmd, when this test started it)
// and waits until its port is free.
func (w *wine) stop(cmd *exec.Cmd, port int) {
	w.t.Helper()
	if out, err := w.run(time.Minute, "taskkill", "/F", "/IM", "countersign.exe"); err != nil {
		w.t.Fatalf("taskkill: %v: %s", err, out)
	}
	if cmd != nil {
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			stopGroup(cmd)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Fatalf("port %d still answers after countersign.exe was stopped", port)
}

// run runs a Windows program (or a Wine tool) to its end and returns its
// output.
func (w *wine) run(timeout time.Duration, exe string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.loader, append([]string{exe}, args...)...)
	cmd.Env = w.env
	cmd.WaitDelay = 10 * time.Second // a program it started may hold the pipe
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish in %v", exe, timeout)
	}
	return string(out), err
}

// output runs a program that must succeed; the keyring-free Wine
// credential store needs no retries, but a busy machine may be slow.
func (w *wine) output(exe string, args ...string) string {
	w.t.Helper()
	out, err := w.run(2*time.Minute, exe, args...)
	if err != nil {
		w.t.Fatalf("%s %v: %v\n%s", exe, args, err, out)
	}
	return out
}

// msiexecCode runs msiexec quietly with a verbose log in out and returns
// its exit code.
func (w *wine) msiexecCode(name string, args ...string) int {
	w.t.Helper()
	log := filepath.Join(w.out, "msiexec-"+name+".log")
	all := append([]string{"msiexec"}, args[0], w.windowsPath(args[1]))
	all = append(all, args[2:]...)
	all = append(all, "/qn", "/l*v", w.windowsPath(log))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.loader, all...)
	cmd.Env = w.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		w.t.Fatalf("msiexec %v did not finish", args)
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		w.t.Fatalf("msiexec %v: %v: %s", args, err, out)
	}
	return 0
}

func (w *wine) msiexec(name string, args ...string) {
	w.t.Helper()
	if code := w.msiexecCode(name, args...); code != 0 {
		w.t.Fatalf("msiexec %v exited %d (log: %s)", args, code, filepath.Join(w.out, "msiexec-"+name+".log"))
	}
}

// windowsPath is a Linux path as the Windows programs see it (Wine maps
// the root to Z:).
func (w *wine) windowsPath(p string) string {
	abs, _ := filepath.Abs(p)
	return `Z:` + strings.ReplaceAll(abs, "/", `\`)
}

// unix is a C: path inside the prefix.
func (w *wine) unix(winPath string) string {
	rest := strings.TrimPrefix(winPath, `C:\`)
	return filepath.Join(append([]string{w.prefix, "drive_c"}, strings.Split(rest, `\`)...)...)
}

// userDir is a folder of the prefix's one user.
func (w *wine) userDir(parts ...string) string {
	w.t.Helper()
	users, _ := filepath.Glob(filepath.Join(w.prefix, "drive_c", "users", "*"))
	for _, u := range users {
		if filepath.Base(u) != "Public" {
			return filepath.Join(append([]string{u}, parts...)...)
		}
	}
	w.t.Fatalf("no user in the prefix: %v", users)
	return ""
}

func (w *wine) mustExist(p string) {
	w.t.Helper()
	if _, err := os.Stat(p); err != nil {
		w.t.Errorf("missing: %v", err)
	}
}

func (w *wine) mustNotExist(p string) {
	w.t.Helper()
	if _, err := os.Stat(p); err == nil {
		w.t.Errorf("still there: %s", p)
	}
}

// find lists the files with this name anywhere on the prefix's C: drive
// (Wine puts an all-users shortcut in the person's Start Menu).
func (w *wine) find(name string) []string {
	var found []string
	filepath.WalkDir(filepath.Join(w.prefix, "drive_c"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.EqualFold(d.Name(), name) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// regValue reads a string value with Wine's reg.exe.
func (w *wine) regValue(key, name string) (string, bool) {
	w.t.Helper()
	out, err := w.run(time.Minute, "reg", "query", key, "/v", name)
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.EqualFold(f[0], name) && strings.HasPrefix(f[1], "REG_") {
			v := strings.TrimSpace(line)
			v = strings.TrimSpace(v[strings.Index(v, f[1])+len(f[1]):])
			return v, true
		}
	}
	return "", false
}

// installedProducts counts Countersign's entries under Uninstall.
func (w *wine) installedProducts() int {
	out, _ := w.run(time.Minute, "reg", "query", `HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall`, "/s")
	n := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "DisplayName" && strings.Join(f[2:], " ") == "Countersign" {
			n++
		}
	}
	return n
}

// startUpstream runs server-everything on loopback (on Linux: Wine's
// programs reach it like any loopback server).
func (w *wine) startUpstream() int {
	w.t.Helper()
	port := testenv.FreePort(w.t)
	cmd := exec.Command("node", "--require", "./loopback.cjs",
		"node_modules/@modelcontextprotocol/server-everything/dist/index.js", "streamableHttp")
	cmd.Dir = w.peers
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	w.own("server-everything", cmd)
	waitTCP(w.t, port)
	return port
}

// loopbackOnly checks that the app answers on 127.0.0.1 and on no other
// address of this machine.
func (w *wine) loopbackOnly(port int) {
	w.t.Helper()
	addrs, _ := net.InterfaceAddrs()
	tried := 0
	for _, a := range addrs {
		ip, _, _ := net.ParseCIDR(a.String())
		if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		tried++
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)), 2*time.Second); err == nil {
			c.Close()
			w.t.Errorf("the installed app answers on %s:%d, not only on loopback", ip, port)
		}
	}
	w.t.Logf("checked %d non-loopback addresses: none answers", tried)
}

// refusals: no token is 401, a foreign Host is 403.
func (w *wine) refusals(url string, port int, token string) {
	w.t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		w.t.Errorf("without the token: %v %v, want 401", status(res), err)
	}
	req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Host = "evil.example:" + strconv.Itoa(port)
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		w.t.Errorf("foreign Host: %v %v, want 403", status(res), err)
	}
}

func status(res *http.Response) string {
	if res == nil {
		return "no response"
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.Status
}

type clientResult struct {
	OK     bool
	Detail string
}

type client struct{ done chan clientResult }

// client starts the MCP SDK client running the echo scenario.
func (w *wine) client(url, token string) *client {
	c := &client{done: make(chan clientResult, 1)}
	cmd := exec.Command("node", "client.mjs", "--url", url, "--token", token, "--scenario", "echo")
	cmd.Dir = w.peers
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		var r struct {
			OK     bool
			Detail json.RawMessage
		}
		if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
			c.done <- clientResult{Detail: "no result: " + stdout.String() + stderr.String()}
			return
		}
		c.done <- clientResult{OK: r.OK, Detail: string(r.Detail) + " " + stderr.String()}
	}()
	return c
}

func (c *client) result(t *testing.T) clientResult {
	t.Helper()
	select {
	case r := <-c.done:
		return r
	case <-time.After(2 * time.Minute):
		t.Fatal("the client never finished")
	}
	return clientResult{}
}

// bridgeRoundTrip speaks MCP to the installed bridge on stdin: initialize,
// then tools/list, which must list server-everything's echo.
func (w *wine) bridgeRoundTrip(bridge string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.loader, bridge, "everything")
	cmd.Env = w.env
	// An app the bridge started inherits its pipes under Wine: stop
	// waiting for them once the bridge itself has ended.
	cmd.WaitDelay = 10 * time.Second
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Wait() }()
	lines := bufio.NewScanner(outPipe)
	lines.Buffer(make([]byte, 1<<20), 1<<24)
	send := func(s string) { io.WriteString(in, s+"\n") }
	await := func(id int) map[string]any {
		for lines.Scan() {
			var msg map[string]any
			if json.Unmarshal(lines.Bytes(), &msg) == nil && msg["id"] == float64(id) {
				return msg
			}
		}
		w.t.Fatalf("the bridge ended before answering request %d: %s", id, stderr.String())
		return nil
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"wine-test","version":"1"}}}`)
	if res := await(1); res["result"] == nil {
		w.t.Fatalf("bridge initialize: %v", res)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	res := await(2)
	b, _ := json.Marshal(res["result"])
	if !strings.Contains(string(b), `"name":"echo"`) {
		w.t.Fatalf("bridge tools/list has no echo: %s", b)
	}
	w.t.Logf("the installed bridge relayed initialize and tools/list (%d bytes)", len(b))
}

func (w *wine) xdotool(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = w.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (w *wine) waitWindow(title string) string {
	w.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := w.xdotool("search", "--onlyvisible", "--name", "^"+title)
		if f := strings.Fields(out); len(f) > 0 {
			return f[0]
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Fatalf("no window %q appeared", title)
	return ""
}

func (w *wine) key(win, keys string) {
	w.t.Helper()
	for _, args := range [][]string{{"windowfocus", "--sync", win}, {"key", "--clearmodifiers", keys}} {
		if out, err := w.xdotool(args...); err != nil {
			w.t.Fatalf("xdotool %v: %v: %s", args, err, out)
		}
	}
}

// screenshot saves the screen to out/name once ready says the window is
// drawn and it has stopped changing.
func (w *wine) screenshot(name string, ready func(image.Image) bool) string {
	w.t.Helper()
	var shot []byte
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.Command("import", "-window", "root", "png:-")
		cmd.Env = w.env
		out, err := cmd.Output()
		if err == nil {
			settled := bytes.Equal(out, shot)
			shot = out
			if img, err := png.Decode(bytes.NewReader(out)); err == nil && ready(img) && settled {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if shot == nil {
		w.t.Fatal("no screenshot could be taken")
	}
	path := filepath.Join(w.out, name)
	write(w.t, path, string(shot))
	return path
}

// painted reports whether the point is no longer the black of the bare
// X root window.
func painted(img image.Image, x, y int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	return r|g|b != 0
}

// versionOf reads the version from an MSI's file name,
// Countersign-<version>-x64.msi.
func versionOf(t *testing.T, msi string) string {
	base := strings.TrimPrefix(filepath.Base(msi), "Countersign-")
	v, _, ok := strings.Cut(base, "-")
	if !ok {
		t.Fatalf("cannot read a version from %s", msi)
	}
	return v
}

func waitTCP(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
