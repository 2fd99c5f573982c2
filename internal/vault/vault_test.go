package vault

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/zalando/go-keyring"
)

// memKeyring is an in-memory keychain that can be made to fail, and can
// refuse values over a size like Windows Credential Manager does.
type memKeyring struct {
	mu    sync.Mutex
	m     map[string]string
	fail  error
	limit int // Set fails with ErrSetDataTooBig above this many bytes; 0 = none
}

func newMem() *memKeyring { return &memKeyring{m: map[string]string{}} }

func (k *memKeyring) Get(s, u string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return "", k.fail
	}
	v, ok := k.m[s+"/"+u]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (k *memKeyring) Set(s, u, p string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	if k.limit > 0 && len(p) > k.limit {
		return keyring.ErrSetDataTooBig
	}
	k.m[s+"/"+u] = p
	return nil
}

func (k *memKeyring) Delete(s, u string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	if _, ok := k.m[s+"/"+u]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.m, s+"/"+u)
	return nil
}

var tokenShape = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestLocalTokenIsCreatedOnceAndKept(t *testing.T) {
	v := NewWith(newMem())
	if _, err := v.ExistingLocalToken(); err == nil {
		t.Fatal("ExistingLocalToken invented a token")
	}
	a, err := v.LocalToken()
	if err != nil || !tokenShape.MatchString(a) {
		t.Fatalf("token %q, err %v", a, err)
	}
	b, _ := v.LocalToken()
	c, _ := v.ExistingLocalToken()
	if a != b || a != c {
		t.Fatalf("token changed: %q %q %q", a, b, c)
	}
}

// TestNoSessionBusIsAPlainError: `countersign token` from a terminal
// outside the desktop session says what to do instead of
// `exec: "dbus-launch": executable file not found`.
func TestNoSessionBusIsAPlainError(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux reaches its keychain over the session bus")
	}
	kr := newMem()
	kr.fail = errors.New(`exec: "dbus-launch": executable file not found in $PATH`)
	v := Open(Options{Keyring: kr, Dir: t.TempDir()})
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	for _, f := range []func() (string, error){v.LocalToken, v.ExistingLocalToken} {
		_, err := f()
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not part of a desktop session") {
			t.Errorf("without a session bus: %v", err)
		}
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
	if _, err := v.LocalToken(); strings.Contains(err.Error(), "desktop session") {
		t.Errorf("with a session bus the hint is wrong: %v", err)
	}
}

func TestLockedKeychainIsAClearError(t *testing.T) {
	kr := newMem()
	kr.fail = errors.New("failed to unlock correct collection")
	v := Open(Options{Keyring: kr, Dir: t.TempDir()})
	if _, err := v.LocalToken(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("LocalToken err = %v, want ErrUnavailable", err)
	}
	if _, err := v.ExistingLocalToken(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ExistingLocalToken err = %v, want ErrUnavailable", err)
	}
	if _, err := v.Get("a"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get err = %v, want ErrUnavailable", err)
	}
	if err := v.Set("a", []byte("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Set err = %v, want ErrUnavailable", err)
	}
	if err := v.Set("a", make([]byte, 4000)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sealed Set err = %v, want ErrUnavailable", err)
	}
	if err := v.Delete("a"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Delete err = %v, want ErrUnavailable", err)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sealedFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.sealed"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValuesRoundTripInTheRightStore(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		limit  int // keychain size limit
		sealed bool
	}{
		{name: "small value stays in the keychain", size: 100},
		{name: "value at the threshold stays in the keychain", size: 1497}, // base64 of 1497 bytes + tag = 2000
		{name: "value over the threshold is sealed", size: 1500, sealed: true},
		{name: "16 KB value is sealed", size: 16 << 10, sealed: true},
		{name: "empty value is kept", size: 0},
		{name: "keychain smaller than expected makes the vault seal", size: 800, limit: 1000, sealed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := newMem()
			kr.limit = tt.limit
			dir := t.TempDir()
			v := Open(Options{Keyring: kr, Dir: dir})
			val := randomBytes(t, tt.size)
			if err := v.Set("auth/github/session", val); err != nil {
				t.Fatal(err)
			}
			got, err := v.Get("auth/github/session")
			if err != nil || !bytes.Equal(got, val) {
				t.Fatalf("Get = %d bytes, %v; want the %d bytes stored", len(got), err, len(val))
			}
			files := sealedFiles(t, dir)
			if tt.sealed != (len(files) == 1) {
				t.Fatalf("sealed files %v, want sealed=%v", files, tt.sealed)
			}
			for _, v := range kr.m {
				if len(v) > SealThreshold {
					t.Fatalf("keychain holds a %d-byte value", len(v))
				}
			}
			if tt.sealed {
				fi, err := os.Stat(files[0])
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Fatalf("sealed file mode %v, want 0600", fi.Mode().Perm())
				}
				b, _ := os.ReadFile(files[0])
				if tt.size > 0 && bytes.Contains(b, val[:min(len(val), 64)]) {
					t.Fatal("the sealed file holds the value in the clear")
				}
			}
			if err := v.Delete("auth/github/session"); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Get("auth/github/session"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after Delete, Get err = %v, want ErrNotFound", err)
			}
			if f := sealedFiles(t, dir); len(f) != 0 {
				t.Fatalf("Delete left %v", f)
			}
		})
	}
}

func TestOverwriteMovesBetweenStores(t *testing.T) {
	kr := newMem()
	dir := t.TempDir()
	v := Open(Options{Keyring: kr, Dir: dir})
	big, small := randomBytes(t, 5000), []byte("short")
	if err := v.Set("x", big); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("x", small); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Get("x"); !bytes.Equal(got, small) {
		t.Fatalf("got %q, want %q", got, small)
	}
	if f := sealedFiles(t, dir); len(f) != 0 {
		t.Fatalf("a small value left the old sealed file %v", f)
	}
	if err := v.Set("x", big); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Get("x"); !bytes.Equal(got, big) {
		t.Fatal("big value did not come back")
	}
}

func TestDataKeyIsCreatedOnceAndSurvivesReopen(t *testing.T) {
	kr := newMem()
	dir := t.TempDir()
	v := Open(Options{Keyring: kr, Dir: dir})
	a, b := randomBytes(t, 3000), randomBytes(t, 3000)
	v.Set("a", a)
	v.Set("b", b)
	keys := 0
	for k := range kr.m {
		if k == Service+"/"+dataKeyKey {
			keys++
		}
	}
	if keys != 1 {
		t.Fatalf("%d data keys in the keychain, want 1", keys)
	}
	v2 := Open(Options{Keyring: kr, Dir: dir})
	if got, err := v2.Get("a"); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("a reopened vault read %d bytes, %v", len(got), err)
	}
}

func TestSealedFilesCannotBeSwappedOrAltered(t *testing.T) {
	kr := newMem()
	dir := t.TempDir()
	v := Open(Options{Keyring: kr, Dir: dir})
	v.Set("a", randomBytes(t, 3000))
	v.Set("b", randomBytes(t, 3000))
	pa, pb := filepath.Join(dir, fileName("a")), filepath.Join(dir, fileName("b"))
	fa, _ := os.ReadFile(pa)

	os.WriteFile(pb, fa, 0o600) // b's file replaced with a's
	if _, err := v.Get("b"); !errors.Is(err, ErrTampered) {
		t.Fatalf("swapped file: err = %v, want ErrTampered", err)
	}
	flipped := bytes.Clone(fa)
	flipped[len(flipped)-1] ^= 1
	os.WriteFile(pa, flipped, 0o600)
	if _, err := v.Get("a"); !errors.Is(err, ErrTampered) {
		t.Fatalf("altered file: err = %v, want ErrTampered", err)
	}
	os.Remove(pa)
	if _, err := v.Get("a"); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrSealedFileMissing) {
		t.Fatalf("missing file: err = %v, want ErrNotFound and ErrSealedFileMissing", err)
	}
}

// TestOlderSealedCopyDoesNotOpen: a sealed file is bound to the write that
// made it, not only to its entry's name. Another program of the person's
// that saved an older copy of the file can put it back (a rollback to
// wider settings, an expired token); the vault refuses it, as it refuses
// an entry that records no write at all.
func TestOlderSealedCopyDoesNotOpen(t *testing.T) {
	kr := newMem()
	dir := t.TempDir()
	v := Open(Options{Keyring: kr, Dir: dir})
	older, newer := randomBytes(t, 3000), randomBytes(t, 3000)
	if err := v.Set("a", older); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fileName("a"))
	saved, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("a", newer); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Get("a"); err != nil || !bytes.Equal(got, newer) {
		t.Fatalf("the newest value: %d bytes, %v", len(got), err)
	}
	if err := os.WriteFile(p, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := v.Get("a")
	if !errors.Is(err, ErrTampered) || errors.Is(err, ErrNotFound) {
		t.Fatalf("an older copy put back: got %d bytes (the older value: %v), err = %v; want ErrTampered", len(got), bytes.Equal(got, older), err)
	}
	if got, err := Open(Options{Keyring: kr, Dir: dir}).Get("a"); !errors.Is(err, ErrTampered) {
		t.Fatalf("an older copy put back, reopened: got %d bytes, err = %v; want ErrTampered", len(got), err)
	}

	// The same value written again is sealed afresh: its earlier file
	// does not open either.
	v.Set("b", older)
	pb := filepath.Join(dir, fileName("b"))
	first, _ := os.ReadFile(pb)
	v.Set("b", older)
	os.WriteFile(pb, first, 0o600)
	if _, err := v.Get("b"); !errors.Is(err, ErrTampered) {
		t.Fatalf("the same value's earlier file: err = %v; want ErrTampered", err)
	}

	// An entry that records no write opens no file.
	v.Set("c", newer)
	kr.m[Service+"/"+secretPrefix+"c"] = sealedTag
	if _, err := v.Get("c"); !errors.Is(err, ErrTampered) {
		t.Fatalf("an entry recording no write: err = %v; want ErrTampered", err)
	}
}

func TestSealedUnderAnotherKeyIsNamed(t *testing.T) {
	dir := t.TempDir()
	v1 := Open(Options{Keyring: newMem(), Dir: dir})
	v1.Set("a", randomBytes(t, 3000))
	kr2 := newMem()
	v2 := Open(Options{Keyring: kr2, Dir: dir})
	v2.Set("other", randomBytes(t, 3000)) // creates a different data key
	fa, err := os.ReadFile(filepath.Join(dir, fileName("a")))
	if err != nil {
		t.Fatal(err)
	}
	kr2.m[Service+"/"+secretPrefix+"a"] = sealedTag + fileSum(fa)
	_, err = v2.Get("a")
	if !errors.Is(err, ErrTampered) || !errors.Is(err, errOtherKey) {
		t.Fatalf("err = %v, want ErrTampered naming another key", err)
	}
}

func TestStrayFileWithoutEntryIsNotRead(t *testing.T) {
	dir := t.TempDir()
	kr := newMem()
	v := Open(Options{Keyring: kr, Dir: dir})
	v.Set("a", randomBytes(t, 3000))
	delete(kr.m, Service+"/"+secretPrefix+"a")
	if _, err := v.Get("a"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrSealedFileMissing) {
		t.Fatalf("err = %v, want ErrNotFound only: the keychain entry is the source of truth", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	v := Open(Options{Keyring: newMem(), Dir: t.TempDir()})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("s%d", i%3)
			for j := range 20 {
				val := bytes.Repeat([]byte{byte(j)}, 1000+j*200)
				if err := v.Set(name, val); err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Get(name); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestInvalidNamesAreRefused(t *testing.T) {
	v := Open(Options{Keyring: newMem(), Dir: t.TempDir()})
	for _, n := range []string{"", "a\nb", string(make([]byte, 300))} {
		if err := v.Set(n, []byte("x")); err == nil {
			t.Errorf("Set(%q) accepted", n)
		}
	}
}

// fixedSeal seals like seal with an all-zero nonce, so every fuzz worker
// computes the same genuine file.
func fixedSeal(t testing.TB, key []byte, name string, value []byte) []byte {
	aead, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(magic), keyID(key)...)
	nonce := make([]byte, nonceSize)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, value, associatedData(name))
}

func FuzzUnseal(f *testing.F) {
	key := bytes.Repeat([]byte{7}, keySize)
	good := fixedSeal(f, key, "name", []byte("a secret value"))
	f.Add(good, "name")
	f.Add([]byte("CSv1"), "name")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if _, err := unseal(key, name, data); err == nil && (name != "name" || !bytes.Equal(data, good)) {
			t.Fatalf("a forged file opened: name %q, %d bytes", name, len(data))
		}
		// Whatever the input, sealing it and opening it gives it back.
		s, err := seal(key, name, data)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := unseal(key, name, s); err != nil || !bytes.Equal(v, data) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

// TestRealSecretService runs against the session's Secret Service, which
// scripts/test provides (gnome-keyring in dbus-run-session).
func TestRealSecretService(t *testing.T) {
	if os.Getenv("COUNTERSIGN_REAL_KEYRING") == "" {
		t.Skip("needs a real Secret Service: run through scripts/test")
	}
	v := New()
	a, err := v.LocalToken()
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.ExistingLocalToken()
	if err != nil || a != b || !tokenShape.MatchString(a) {
		t.Fatalf("tokens %q %q, err %v", a, b, err)
	}
	t.Cleanup(func() { keyring.Delete(Service, localTokenKey) })
}

// TestRealSecretServiceLargeValue stores a 16 KB value (sealed) and a small
// one (in the keychain) through the real Secret Service.
func TestRealSecretServiceLargeValue(t *testing.T) {
	if os.Getenv("COUNTERSIGN_REAL_KEYRING") == "" {
		t.Skip("needs a real Secret Service: run through scripts/test")
	}
	service := fmt.Sprintf("Countersign-test-%x", randomBytes(t, 4))
	dir := t.TempDir()
	v := Open(Options{Dir: dir, Service: service})
	t.Cleanup(func() {
		v.Delete("large")
		v.Delete("small")
		keyring.Delete(service, dataKeyKey)
	})
	large, small := randomBytes(t, 16<<10), []byte("a small secret")
	if err := v.Set("large", large); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("small", small); err != nil {
		t.Fatal(err)
	}
	if len(sealedFiles(t, dir)) != 1 {
		t.Fatal("the 16 KB value was not sealed into a file")
	}
	fresh := Open(Options{Dir: dir, Service: service}) // no cached key
	if got, err := fresh.Get("large"); err != nil || !bytes.Equal(got, large) {
		t.Fatalf("large: %d bytes, %v", len(got), err)
	}
	if got, err := fresh.Get("small"); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("small: %q, %v", got, err)
	}
	if err := fresh.Delete("large"); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Get("large"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
}
