package smoke

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testenv"
	"github.com/godbus/dbus/v5"
)

// session is the private desktop the app runs in.
type session struct {
	t       *testing.T
	dir     string   // scratch: HOME, runtime dir, binaries
	out     string   // screenshots and logs, kept
	env     []string // for every process started in the session
	busAddr string
	peers   string // test/peers
}

func TestSmoke(t *testing.T) {
	if os.Getenv("COUNTERSIGN_SMOKE") != "1" {
		t.Skip("set COUNTERSIGN_SMOKE=1 to run the end-to-end test of the real app on Xvfb")
	}
	peers := needTools(t)
	s := newSession(t, peers, "out")
	bin := s.build()
	upstream := s.startUpstream()
	port := testenv.FreePort(t)
	cfg := filepath.Join(s.dir, "settings.json")
	write(t, cfg, fmt.Sprintf(`{"port": %d, "approvalTimeout": "2m", "servers": [
  {"id": "everything", "name": "Everything", "transport": "streamable-http", "url": "http://127.0.0.1:%d/mcp"}
]}`, port, upstream))
	// Cursor already reaches GitHub directly: Connect your AI app should
	// offer to turn that off.
	write(t, filepath.Join(s.dir, "home", ".cursor", "mcp.json"), `{"mcpServers": {"github": {"url": "https://api.githubcopilot.com/mcp/"}}}`)
	notes := s.watchNotifications()

	app := s.start("app", bin, "-config", cfg)
	waitTCP(t, port)
	time.Sleep(3 * time.Second) // let it settle before measuring
	idle, mesa := rss(t, app.Process.Pid)
	figures := []string{fmt.Sprintf("idle RSS of the tray app before any window: %.1f MB, of which %.1f MB is Mesa's software renderer (libLLVM, swrast)",
		float64(idle)/1024, float64(mesa)/1024)}
	if w := s.windows("Countersign: "); len(w) != 0 {
		t.Errorf("a window is open at start (want only the tray): %v", w)
	}
	token := strings.TrimSpace(s.run(bin, "token"))
	url := fmt.Sprintf("http://127.0.0.1:%d/servers/everything/mcp", port)

	// 1. A call: the window opens, a notification is sent, the tray shows
	// it; the person approves with the keyboard; the AI app gets the echo.
	sent := time.Now()
	first := s.client(url, token)
	win := s.waitWindow("Countersign: 1 waiting")
	shot := s.screenshot("review.png", "root", func(img image.Image) bool { return painted(img, 700, 300) })
	t.Logf("screenshot: %s", shot)
	select {
	case n := <-notes:
		if !strings.Contains(n.text, "Everything wants to echo") {
			t.Errorf("notification %q", n.text)
		}
		figures = append(figures, fmt.Sprintf("tools/call sent → notification on the bus: %v (includes the client's connect and initialize)", n.at.Sub(sent).Round(time.Millisecond)))
	case <-time.After(10 * time.Second):
		t.Error("no notification reached org.freedesktop.Notifications")
	}
	tray := s.tray(app.Process.Pid)
	if status := tray.label(0); !strings.HasPrefix(status, "1 call waiting") {
		t.Errorf("tray status %q", status)
	}
	time.Sleep(time.Second) // a person reads before deciding
	s.key(win, "ctrl+Return")
	if res := first.result(t); !res.OK || !strings.Contains(res.Detail, "hello relay") {
		t.Fatalf("approved call: %+v", res)
	}

	// 2. A second launch brings the first forward and exits.
	again := exec.Command(bin, "-config", cfg)
	again.Env = s.env
	msg, err := again.CombinedOutput()
	if err != nil || !strings.Contains(string(msg), "already running") {
		t.Errorf("second launch: %v: %s", err, msg)
	}

	// 3. Another call, denied with the keyboard: the AI app gets isError.
	second := s.client(url, token)
	win = s.waitWindow("Countersign: 1 waiting")
	time.Sleep(time.Second) // past the guard against keys meant for a call that just left
	s.key(win, "ctrl+d")
	if res := second.result(t); res.OK || !strings.Contains(res.Detail, "isError") {
		t.Fatalf("denied call: %+v", res)
	}

	// 4. The tray opens settings and the audit viewer.
	s.screenshot("review-after.png", win, func(img image.Image) bool { return painted(img, 100, 100) })
	tray.click("Settings…")
	s.screenshot("settings.png", s.waitWindow("Countersign: settings"), func(img image.Image) bool { return painted(img, 300, 200) })
	tray.click("Audit…")
	s.screenshot("audit.png", s.waitWindow("Countersign: audit"), func(img image.Image) bool { return painted(img, 500, 200) })
	tray.click("Connect your AI app…")
	s.screenshot("connect.png", s.waitWindow("Countersign: connect your AI app"), func(img image.Image) bool { return painted(img, 300, 200) })

	busy, mesa := rss(t, app.Process.Pid)
	figures = append(figures, fmt.Sprintf("RSS with all four windows open: %.1f MB, of which %.1f MB is Mesa's software renderer",
		float64(busy)/1024, float64(mesa)/1024))

	// 5. Quit from the tray with a call waiting: Countersign asks first,
	// over the review window; the person confirms from the keyboard (Tab to
	// "Keep running", Tab to "Quit and deny", Space). The call is denied,
	// the app exits cleanly.
	third := s.client(url, token)
	win = s.waitWindow("Countersign: 1 waiting")
	before := s.capture(win)
	tray.click("Quit")
	// The question is drawn over the review window, dimming all of it: wait
	// for that before pressing keys meant for it.
	s.screenshot("quit.png", win, func(img image.Image) bool { return changed(before, img) > 0.3 })
	if img := s.capture(win); changed(before, img) <= 0.3 {
		t.Fatal("the Quit question did not show over the review window")
	}
	s.key(win, "Tab")
	s.key(win, "Tab")
	s.key(win, "space")
	if res := third.result(t); res.OK || !strings.Contains(res.Detail, "isError") {
		t.Errorf("call waiting at quit: %+v", res)
	}
	done := make(chan error, 1)
	go func() { done <- app.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the app exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("the app did not exit after Quit")
	}
	log, _ := os.ReadFile(filepath.Join(s.out, "app.log"))
	if !bytes.Contains(log, []byte("calls still waiting are denied")) {
		t.Errorf("no orderly shutdown in the log:\n%s", log)
	}
	write(t, filepath.Join(s.out, "figures.txt"), strings.Join(figures, "\n")+"\n")
	for _, f := range figures {
		t.Log(f)
	}
}

// needTools returns the path of test/peers once the tools the real app's
// tests need are there; it skips the test (fails it under CI) otherwise.
func needTools(t *testing.T) string {
	t.Helper()
	var missing []string
	for _, tool := range []string{"Xvfb", "dbus-daemon", "dbus-monitor", "gnome-keyring-daemon", "dunst", "xdotool", "import", "node", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	peers, _ := filepath.Abs("../peers")
	if _, err := os.Stat(filepath.Join(peers, "node_modules", "@modelcontextprotocol", "server-everything")); err != nil {
		missing = append(missing, "test/peers/node_modules (npm ci)")
	}
	if len(missing) > 0 {
		msg := "missing for the smoke test: " + strings.Join(missing, ", ") +
			" (apt-get install xvfb xauth imagemagick xdotool dbus gnome-keyring dunst, and the Fyne build packages)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return peers
}

// newSession starts a private desktop whose logs and screenshots go to
// outDir (relative to test/smoke), emptied first.
func newSession(t *testing.T, peers, outDir string) *session {
	dir := t.TempDir()
	out, _ := filepath.Abs(outDir)
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, dir: dir, out: out, peers: peers}
	home, runtime := filepath.Join(dir, "home"), filepath.Join(dir, "run")
	os.MkdirAll(home, 0o700)
	os.MkdirAll(runtime, 0o700)
	s.env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+runtime, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"LANG=en_US.UTF-8", "NO_AT_BRIDGE=1")

	// X server.
	r, w, _ := os.Pipe()
	x := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-ac")
	x.ExtraFiles = []*os.File{w}
	s.own("xvfb", x)
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("Xvfb did not start: %v", err)
	}
	s.env = append(s.env, "DISPLAY=:"+strings.TrimSpace(line))

	// Session bus; it starts dunst when the first notification is sent.
	bus := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	bus.Env = s.env
	stdout, _ := bus.StdoutPipe()
	s.own("dbus", bus)
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon did not start: %v", err)
	}
	s.busAddr = strings.TrimSpace(addr)
	s.env = append(s.env, "DBUS_SESSION_BUS_ADDRESS="+s.busAddr)

	// An unlocked keyring for the local token.
	kr := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	kr.Stdin = strings.NewReader("countersign-smoke")
	s.own("keyring", kr)
	return s
}

// own starts a process that lives as long as the test, logging to out.
func (s *session) own(name string, cmd *exec.Cmd) *exec.Cmd {
	s.t.Helper()
	if cmd.Env == nil {
		cmd.Env = s.env
	}
	logf, err := os.Create(filepath.Join(s.out, name+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", name, err)
	}
	s.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
	})
	return cmd
}

func (s *session) start(name, bin string, args ...string) *exec.Cmd {
	return s.own(name, exec.Command(bin, args...))
}

// run runs a command in the session and returns its standard output.
func (s *session) run(bin string, args ...string) string {
	s.t.Helper()
	var out []byte
	var err error
	for range 50 { // the keyring may still be starting
		cmd := exec.Command(bin, args...)
		cmd.Env = s.env
		out, err = cmd.Output()
		if err == nil {
			return string(out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s %v: %v", bin, args, err)
	return ""
}

// build compiles the app with cgo and the tags scripts/run uses, so the
// figures are the shipped binary's.
func (s *session) build() string {
	s.t.Helper()
	bin := filepath.Join(s.dir, "countersign")
	cmd := exec.Command("go", "build", "-tags", "no_emoji", "-o", bin, "github.com/countersign/countersign/cmd/countersign")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("building the app: %v\n%s", err, out)
	}
	return bin
}

// startUpstream runs server-everything on loopback and returns its port.
func (s *session) startUpstream() int {
	s.t.Helper()
	port := testenv.FreePort(s.t)
	cmd := exec.Command("node", "--require", "./loopback.cjs",
		"node_modules/@modelcontextprotocol/server-everything/dist/index.js", "streamableHttp")
	cmd.Dir = s.peers
	cmd.Env = append(s.env, "PORT="+strconv.Itoa(port))
	s.own("server-everything", cmd)
	waitTCP(s.t, port)
	return port
}

type notification struct {
	text string
	at   time.Time
}

// watchNotifications reports every Notify call on the session bus.
func (s *session) watchNotifications() <-chan notification {
	ch := make(chan notification, 10)
	cmd := exec.Command("dbus-monitor", "--address", s.busAddr, "interface='org.freedesktop.Notifications',member='Notify'")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	s.own("dbus-monitor", cmd)
	go func() {
		sc := bufio.NewScanner(stdout)
		var text []string
		in := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "method call") && strings.Contains(line, "member=Notify"):
				in, text = true, nil
			case in && strings.HasPrefix(strings.TrimSpace(line), "string "):
				text = append(text, strings.TrimSpace(line))
				if len(text) == 4 { // app name, icon, summary, body
					ch <- notification{text: strings.Join(text, " "), at: time.Now()}
					in = false
				}
			}
		}
	}()
	return ch
}

type clientResult struct {
	Scenario string
	OK       bool
	Detail   string
}

type client struct {
	done chan clientResult
}

// client starts the MCP SDK client running the echo scenario.
func (s *session) client(url, token string) *client {
	c := &client{done: make(chan clientResult, 1)}
	cmd := exec.Command("node", "client.mjs", "--url", url, "--token", token, "--scenario", "echo")
	cmd.Dir = s.peers
	cmd.Env = s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		var r struct {
			Scenario string
			OK       bool
			Detail   json.RawMessage
		}
		if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
			c.done <- clientResult{Detail: "no result: " + stdout.String() + stderr.String()}
			return
		}
		c.done <- clientResult{Scenario: r.Scenario, OK: r.OK, Detail: string(r.Detail) + " " + stderr.String()}
	}()
	return c
}

func (c *client) result(t *testing.T) clientResult {
	t.Helper()
	select {
	case r := <-c.done:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("the client never finished")
	}
	return clientResult{}
}

// windows lists the ids of visible windows whose title starts with prefix.
func (s *session) windows(prefix string) []string {
	cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^"+prefix)
	cmd.Env = s.env
	out, _ := cmd.Output()
	return strings.Fields(string(out))
}

func (s *session) waitWindow(title string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if w := s.windows(title); len(w) > 0 {
			return w[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("no window %q appeared", title)
	return ""
}

// key focuses a window and types a key combination into it.
func (s *session) key(win, keys string) {
	s.t.Helper()
	for _, args := range [][]string{{"windowfocus", "--sync", win}, {"key", "--clearmodifiers", keys}} {
		cmd := exec.Command("xdotool", args...)
		cmd.Env = s.env
		if out, err := cmd.CombinedOutput(); err != nil {
			s.t.Fatalf("xdotool %v: %v: %s", args, err, out)
		}
	}
}

// screenshot saves a window ("root" for the whole screen) to out/name once
// ready says it is drawn and it has stopped changing.
func (s *session) screenshot(name, window string, ready func(image.Image) bool) string {
	s.t.Helper()
	path := filepath.Join(s.out, name)
	var png []byte
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.Command("import", "-window", window, "png:-")
		cmd.Env = s.env
		out, err := cmd.Output()
		if err == nil {
			settled := bytes.Equal(out, png)
			png = out
			if img, err := decodePNG(out); err == nil && ready(img) && settled {
				break
			}
		}
		time.Sleep(400 * time.Millisecond)
	}
	if png == nil {
		s.t.Fatal("no screenshot could be taken")
	}
	write(s.t, path, string(png))
	return path
}

func decodePNG(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }

// capture takes one picture of a window now.
func (s *session) capture(window string) image.Image {
	s.t.Helper()
	cmd := exec.Command("import", "-window", window, "png:-")
	cmd.Env = s.env
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("capturing %s: %v", window, err)
	}
	img, err := decodePNG(out)
	if err != nil {
		s.t.Fatalf("capturing %s: %v", window, err)
	}
	return img
}

// changed is the share of pixels (sampled every 4th in each direction)
// that differ between two pictures of a window; a different size is all.
func changed(a, b image.Image) float64 {
	if a.Bounds() != b.Bounds() {
		return 1
	}
	r := a.Bounds()
	var n, diff int
	for y := r.Min.Y; y < r.Max.Y; y += 4 {
		for x := r.Min.X; x < r.Max.X; x += 4 {
			n++
			if a.At(x, y) != b.At(x, y) {
				diff++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(diff) / float64(n)
}

// painted reports whether the point is no longer the black of the bare
// X root window: the app has drawn there.
func painted(img image.Image, x, y int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	return r|g|b != 0
}

// trayMenu is the app's tray menu, read and clicked over D-Bus as a tray
// host does.
type trayMenu struct {
	t    *testing.T
	conn *dbus.Conn
	obj  dbus.BusObject
}

func (s *session) tray(pid int) *trayMenu {
	s.t.Helper()
	conn, err := dbus.Connect(s.busAddr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	name := fmt.Sprintf("org.kde.StatusNotifierItem-%d-1", pid)
	return &trayMenu{t: s.t, conn: conn, obj: conn.Object(name, "/StatusNotifierMenu")}
}

type menuItem struct {
	id    int32
	label string
}

func (m *trayMenu) items() []menuItem {
	m.t.Helper()
	var rev uint32
	var layout struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	if err := m.obj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &layout); err != nil {
		m.t.Fatalf("reading the tray menu: %v", err)
	}
	var out []menuItem
	for _, c := range layout.Children {
		fields, ok := c.Value().([]any)
		if !ok || len(fields) < 2 {
			continue
		}
		id, _ := fields[0].(int32)
		props, _ := fields[1].(map[string]dbus.Variant)
		label, _ := props["label"].Value().(string)
		if label != "" {
			out = append(out, menuItem{id: id, label: label})
		}
	}
	return out
}

func (m *trayMenu) label(i int) string {
	items := m.items()
	if i >= len(items) {
		m.t.Fatalf("the tray menu has %d items", len(items))
	}
	return items[i].label
}

func (m *trayMenu) click(label string) {
	m.t.Helper()
	for _, it := range m.items() {
		if it.label == label {
			call := m.obj.Call("com.canonical.dbusmenu.Event", 0, it.id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
			if call.Err != nil {
				m.t.Fatalf("clicking %q: %v", label, call.Err)
			}
			return
		}
	}
	m.t.Fatalf("no tray menu item %q in %v", label, m.items())
}

// rss returns a process's resident memory in KiB, and how much of it is
// Mesa's software renderer, which a machine with a GPU driver does not map.
func rss(t *testing.T, pid int) (total, mesa int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	software := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-"): // a mapping's header
			name := ""
			if len(f) >= 6 {
				name = f[5]
			}
			// Mesa 24 and later put the drivers in libgallium-*.so.
			software = strings.Contains(name, "libLLVM") || strings.Contains(name, "swrast_dri") || strings.Contains(name, "libgallium")
		case len(f) >= 2 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			total += n
			if software {
				mesa += n
			}
		}
	}
	return total, mesa
}

func waitTCP(t *testing.T, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
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
