// Package vault keeps Countersign's secrets in the OS keychain (Secret
// Service on Linux, Keychain on macOS, Credential Manager on Windows).
// Nothing secret is ever written to a file.
package vault

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/zalando/go-keyring"
)

// Service is the keychain service name all entries are filed under.
const Service = "Countersign"

const localTokenKey = "local-client-token"

// ErrUnavailable means the OS keychain could not be used: it is locked,
// missing, or refused the request.
var ErrUnavailable = errors.New("the OS keychain is not available")

// Keyring is the keychain API the vault uses; go-keyring provides it.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

type osKeyring struct{}

func (osKeyring) Get(s, u string) (string, error) { return keyring.Get(s, u) }
func (osKeyring) Set(s, u, p string) error        { return keyring.Set(s, u, p) }
func (osKeyring) Delete(s, u string) error        { return keyring.Delete(s, u) }

// Vault reads and writes secrets. Its calls may block on a keychain prompt:
// never call it from a UI goroutine.
type Vault struct {
	kr Keyring
}

// New returns a vault on the OS keychain.
func New() *Vault { return &Vault{kr: osKeyring{}} }

// NewWith returns a vault on kr, for tests.
func NewWith(kr Keyring) *Vault { return &Vault{kr: kr} }

// LocalToken returns the local client token AI apps present to the relay,
// creating it (256 random bits, hex) the first time.
func (v *Vault) LocalToken() (string, error) {
	tok, err := v.kr.Get(Service, localTokenKey)
	if err == nil && len(tok) == 64 {
		return tok, nil
	}
	if err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return "", fmt.Errorf("%w: reading the local client token: %v", ErrUnavailable, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok = hex.EncodeToString(b)
	if err := v.kr.Set(Service, localTokenKey, tok); err != nil {
		return "", fmt.Errorf("%w: storing the local client token: %v", ErrUnavailable, err)
	}
	return tok, nil
}

// ExistingLocalToken returns the local client token without creating one;
// the bridge uses it, since only the app may create the token.
func (v *Vault) ExistingLocalToken() (string, error) {
	tok, err := v.kr.Get(Service, localTokenKey)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", fmt.Errorf("no local client token yet: start Countersign once first")
	}
	if err != nil {
		return "", fmt.Errorf("%w: reading the local client token: %v", ErrUnavailable, err)
	}
	return tok, nil
}
