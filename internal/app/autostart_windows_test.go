package app

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/windows/registry"
)

// scratchRunKey is a runKey whose "person" and "computer" roots are two
// throwaway keys under HKEY_CURRENT_USER, removed when the test ends.
func scratchRunKey(t *testing.T) (runKey, func(root registry.Key) (string, bool)) {
	t.Helper()
	base := fmt.Sprintf(`Software\CountersignTest-%d`, os.Getpid())
	open := func(sub string) registry.Key {
		k, _, err := registry.CreateKey(registry.CURRENT_USER, base+`\`+sub, registry.ALL_ACCESS)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	r := runKey{user: open("user"), machine: open("machine"), path: "Run", name: runValueName,
		command: runCommand([]string{`C:\Program Files\Countersign\countersign.exe`, "-config", `C:\a b\settings.json`})}
	t.Cleanup(func() {
		for _, sub := range []string{`user\Run`, `machine\Run`, "user", "machine", ""} {
			registry.DeleteKey(registry.CURRENT_USER, base+`\`+sub)
		}
	})
	get := func(root registry.Key) (string, bool) {
		v, ok, err := r.read(root)
		if err != nil {
			t.Fatal(err)
		}
		return v, ok
	}
	return r, get
}

func TestRunKeyOnOff(t *testing.T) {
	r, get := scratchRunKey(t)
	if want := `"C:\Program Files\Countersign\countersign.exe" -config "C:\a b\settings.json"`; r.command != want {
		t.Fatalf("command = %s, want %s", r.command, want)
	}
	if st, err := r.state(); err != nil || st.On || st.Unavailable != "" {
		t.Fatalf("fresh state = %+v, %v; want off and changeable", st, err)
	}
	if err := r.set(true); err != nil {
		t.Fatal(err)
	}
	if v, ok := get(r.user); !ok || v != r.command {
		t.Fatalf("after on the Run value is %q (%v), want %q", v, ok, r.command)
	}
	if st, _ := r.state(); !st.On {
		t.Error("state is off after turning it on")
	}
	if err := r.set(false); err != nil {
		t.Fatal(err)
	}
	if _, ok := get(r.user); ok {
		t.Error("the Run value is still there after turning it off")
	}
	if err := r.set(false); err != nil {
		t.Errorf("turning off twice: %v", err)
	}
}

func TestRunKeyReconcile(t *testing.T) {
	r, get := scratchRunKey(t)
	// On: a value pointing at an old place is rewritten.
	k, _, _ := registry.CreateKey(r.user, r.path, registry.SET_VALUE)
	k.SetStringValue(r.name, `"C:\old\countersign.exe"`)
	k.Close()
	if changed, err := r.reconcile(true); err != nil || !changed {
		t.Fatalf("reconcile(on) over an old value = %v, %v; want changed", changed, err)
	}
	if v, _ := get(r.user); v != r.command {
		t.Errorf("Run value = %q, want %q", v, r.command)
	}
	if changed, _ := r.reconcile(true); changed {
		t.Error("reconcile(on) changed a value that was already right")
	}
	// Off leaves an installer's value alone.
	if changed, err := r.reconcile(false); err != nil || changed {
		t.Errorf("reconcile(off) = %v, %v; want nothing done", changed, err)
	}
	if _, ok := get(r.user); !ok {
		t.Error("reconcile(off) removed the value")
	}
}

func TestRunKeyMachineWide(t *testing.T) {
	r, get := scratchRunKey(t)
	k, _, _ := registry.CreateKey(r.machine, r.path, registry.SET_VALUE)
	k.SetStringValue(r.name, `"C:\Program Files\Countersign\countersign.exe"`)
	k.Close()
	st, err := r.state()
	if err != nil || !st.On || st.Unavailable == "" {
		t.Fatalf("state with a computer-wide value = %+v, %v; want on and not changeable", st, err)
	}
	if err := r.set(false); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("set(off) = %v, want ErrNotAvailable", err)
	}
	if changed, _ := r.reconcile(true); changed {
		t.Error("reconcile(on) added a second value beside the computer-wide one")
	}
	if _, ok := get(r.user); ok {
		t.Error("a per-person value was written beside the computer-wide one")
	}
}
