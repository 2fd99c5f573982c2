package vault

import (
	"errors"
	"os"
	"regexp"
	"testing"

	"github.com/zalando/go-keyring"
)

// memKeyring is an in-memory keychain that can be made to fail.
type memKeyring struct {
	m    map[string]string
	fail error
}

func (k *memKeyring) Get(s, u string) (string, error) {
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
	if k.fail != nil {
		return k.fail
	}
	k.m[s+"/"+u] = p
	return nil
}
func (k *memKeyring) Delete(s, u string) error { delete(k.m, s+"/"+u); return nil }

var tokenShape = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestLocalTokenIsCreatedOnceAndKept(t *testing.T) {
	v := NewWith(&memKeyring{m: map[string]string{}})
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

func TestLockedKeychainIsAClearError(t *testing.T) {
	v := NewWith(&memKeyring{m: map[string]string{}, fail: errors.New("failed to unlock correct collection")})
	if _, err := v.LocalToken(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := v.ExistingLocalToken(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
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
