package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testenv"
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// trayWatcher is a StatusNotifierWatcher saying a tray host is there, as a
// desktop panel does: the app then idles as a tray icon, with no window
// open, which is how people run it.
type trayWatcher struct{}

func (trayWatcher) RegisterStatusNotifierItem(string) *dbus.Error { return nil }
func (trayWatcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

func startTrayWatcher(t *testing.T) {
	t.Helper()
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatalf("no session bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	const path, iface = "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"
	if err := conn.Export(trayWatcher{}, path, iface); err != nil {
		t.Fatal(err)
	}
	if _, err := prop.Export(conn, path, prop.Map{iface: {
		"IsStatusNotifierHostRegistered": {Value: true},
		"RegisteredStatusNotifierItems":  {Value: []string{}},
		"ProtocolVersion":                {Value: int32(0)},
	}}); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(iface, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("claiming %s: %v %v", iface, reply, err)
	}
}

// TestIdleRSS starts the tray app (BENCH_APP, built by bench/peers) with
// one server, lets it idle BENCH_RSS_IDLE seconds (30) as a tray icon and
// reads its resident memory from /proc. It needs a display, a session bus
// and an unlocked keyring, which bench/peers provides.
func TestIdleRSS(t *testing.T) {
	bin := os.Getenv("BENCH_APP")
	if os.Getenv("COUNTERSIGN_BENCH") != "rss" || bin == "" {
		t.Skip("the idle-RSS measure runs from bench/peers")
	}
	idle := time.Duration(envInt(t, "BENCH_RSS_IDLE", 30)) * time.Second
	startTrayWatcher(t)
	tmp := t.TempDir()
	port := testenv.FreePort(t)
	cfg := writeSettings(t, tmp, port, map[string]any{"id": "http", "name": "Everything", "transport": "streamable-http", "url": "http://127.0.0.1:9/mcp"})
	logPath := filepath.Join(tmp, "app.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(tmp, "xdg"), "XDG_DATA_HOME="+filepath.Join(tmp, "data"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitListening(t, "127.0.0.1:"+strconv.Itoa(port))
	time.Sleep(idle)
	st := procStatus(t, cmd.Process.Pid)
	log, _ := os.ReadFile(logPath)
	if strings.Contains(string(log), "no system tray") {
		t.Fatalf("the app found no tray and opened its window, so this is not the tray app idling:\n%s", log)
	}
	mb := func(k string) float64 { return float64(st[k]) / 1024 }
	fmt.Printf("tray app idle RSS after %v: %.1f MB (anonymous %.1f, files %.1f; peak %.1f MB), target ≤ 35 MB\n",
		idle, mb("VmRSS"), mb("RssAnon"), mb("RssFile"), mb("VmHWM"))
	fmt.Println("largest mappings (MB resident):")
	for _, m := range topMappings(t, cmd.Process.Pid, bin, 10) {
		fmt.Printf("  %5.1f  %s\n", float64(m.kB)/1024, m.name)
	}
}

type mapping struct {
	name string
	kB   int
}

// topMappings sums /proc/PID/smaps's Rss by mapped file ("[anon]" for
// anonymous memory), the program's own file bin by part (code, read-only
// data, data), and returns the n largest.
func topMappings(t *testing.T, pid int, bin string, n int) []mapping {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	sum := map[string]int{}
	name := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			name = "[anon]"
			if len(f) >= 6 {
				name = f[5]
			}
			if name == bin {
				part := map[string]string{"r-xp": "code", "r--p": "read-only data", "rw-p": "data"}[f[1]]
				name += " (" + cmp.Or(part, f[1]) + ")"
			}
		case len(f) == 3 && f[0] == "Rss:":
			kB, _ := strconv.Atoi(f[1])
			sum[name] += kB
		}
	}
	var out []mapping
	for k, v := range sum {
		out = append(out, mapping{k, v})
	}
	slices.SortFunc(out, func(a, b mapping) int { return b.kB - a.kB })
	return out[:min(n, len(out))]
}

// procStatus returns the kB figures of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.Atoi(f[0])
		}
	}
	return out
}
