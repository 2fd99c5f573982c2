// Package vault keeps Countersign's secrets protected by the OS keychain
// (Secret Service on Linux, Keychain on macOS, Credential Manager on
// Windows).
//
// A secret small enough for every platform's keychain (SealThreshold) is
// stored in it directly. A larger one — OAuth access tokens that are JWTs
// can run to several kilobytes, and Windows refuses more than 2,560 bytes,
// macOS about 3,000 — is sealed with AES-256-GCM under a random data key
// that itself lives only in the keychain, and the ciphertext is written to
// a file in the vault's directory. The keychain entry then records that the
// value is sealed and the SHA-256 of the file written, so the keychain stays
// the single source of truth: a sealed file without its entry is never read,
// an older sealed copy put back in place of the newest one fails to open
// (ErrTampered), and deleting the entry deletes the file. Nothing secret is
// ever written to a file in the clear.
//
// Every call may block on the keychain (a Secret Service prompt can wait
// for the person): never call the vault from a UI goroutine.
package vault

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/zalando/go-keyring"
)

// Service is the keychain service name all entries are filed under.
const Service = "Countersign"

// SealThreshold is the largest encoded value kept in the keychain itself;
// larger values are sealed into files. 2,000 bytes stays under Windows
// Credential Manager's 2,560-byte limit and, after go-keyring's base64
// wrapping on macOS (about 2,700 bytes), under the `security` tool's limit.
const SealThreshold = 2000

const (
	localTokenKey = "local-client-token"
	dataKeyKey    = "data-key"
	secretPrefix  = "secret/"
	plainTag      = "p:" // the keychain holds the value, base64
	sealedTag     = "s:" // the value is sealed in a file; the SHA-256 of the file follows, hex
)

// ErrUnavailable means the OS keychain could not be used: it is locked,
// missing, or refused the request.
var ErrUnavailable = errors.New("the OS keychain is not available")

// ErrNotFound means no secret is stored under the name.
var ErrNotFound = errors.New("no such secret")

// ErrSealedFileMissing means the keychain says a secret is sealed in a
// file, but the file is gone. It wraps ErrNotFound (the secret can't be
// had), but unlike a missing entry it says a secret was stored: any
// program the person runs can delete the file, so a caller for whom "never
// stored" is the permissive answer must tell the two apart.
var ErrSealedFileMissing = fmt.Errorf("its sealed file is missing: %w", ErrNotFound)

// ErrTampered means a sealed secret failed authentication: its file was
// altered, swapped with another entry's, replaced by an older copy of its
// own, or sealed under another key.
var ErrTampered = errors.New("sealed secret failed authentication")

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

// Options configure a vault opened with Open.
type Options struct {
	// Keyring is the keychain; nil means the OS keychain.
	Keyring Keyring
	// Dir holds sealed values; "" means DefaultDir().
	Dir string
	// Service is the keychain service name; "" means Service. Tests use
	// their own so they never touch the person's entries.
	Service string
}

// Vault reads and writes secrets. Its calls may block on a keychain prompt:
// never call it from a UI goroutine. It is safe for concurrent use.
type Vault struct {
	kr      Keyring
	dir     string
	service string

	mu  sync.Mutex // serialises writes so keychain entry and file agree
	key []byte     // the data key once loaded; guarded by mu
}

// New returns a vault on the OS keychain, sealing into DefaultDir().
func New() *Vault { return Open(Options{}) }

// NewWith returns a vault on kr, sealing into DefaultDir(); for tests.
func NewWith(kr Keyring) *Vault { return Open(Options{Keyring: kr}) }

// Open returns a vault configured by o.
func Open(o Options) *Vault {
	if o.Keyring == nil {
		o.Keyring = osKeyring{}
	}
	if o.Service == "" {
		o.Service = Service
	}
	return &Vault{kr: o.Keyring, dir: o.Dir, service: o.Service}
}

// DefaultDir is where sealed secrets live: a "secrets" folder beside the
// settings file in the OS config directory.
func DefaultDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(dir, "Countersign", "secrets"), nil
}

// LocalToken returns the local client token AI apps present to the relay,
// creating it (256 random bits, hex) the first time.
func (v *Vault) LocalToken() (string, error) {
	tok, err := v.kr.Get(v.service, localTokenKey)
	if err == nil && len(tok) == 64 {
		return tok, nil
	}
	if err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return "", unavailable("reading the local client token", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok = hex.EncodeToString(b)
	if err := v.kr.Set(v.service, localTokenKey, tok); err != nil {
		return "", unavailable("storing the local client token", err)
	}
	return tok, nil
}

// ExistingLocalToken returns the local client token without creating one;
// the bridge uses it, since only the app may create the token.
func (v *Vault) ExistingLocalToken() (string, error) {
	tok, err := v.kr.Get(v.service, localTokenKey)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", fmt.Errorf("no local client token yet: start Countersign once first")
	}
	if err != nil {
		return "", unavailable("reading the local client token", err)
	}
	return tok, nil
}

// unavailable is the ErrUnavailable for a failed keychain call, in plain
// words when the cause is a terminal outside the desktop session.
func unavailable(doing string, err error) error {
	if hint := sessionHint(); hint != "" {
		return fmt.Errorf("%w: %s (%s: %v)", ErrUnavailable, hint, doing, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, doing, err)
}

// checkName rejects names the keychain or the file layout cannot hold.
func checkName(name string) error {
	if name == "" || len(name) > 200 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("vault: invalid secret name %q", name)
	}
	return nil
}

// Get returns the secret stored under name, or an error wrapping
// ErrNotFound when there is none.
func (v *Vault) Get(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	raw, err := v.kr.Get(v.service, secretPrefix+name)
	if errors.Is(err, keyring.ErrNotFound) {
		return nil, fmt.Errorf("reading secret %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading secret %s: %v", ErrUnavailable, name, err)
	}
	switch {
	case strings.HasPrefix(raw, plainTag):
		b, err := base64.StdEncoding.DecodeString(raw[len(plainTag):])
		if err != nil {
			return nil, fmt.Errorf("reading secret %s: the keychain entry is corrupt", name)
		}
		return b, nil
	case strings.HasPrefix(raw, sealedTag):
		return v.readSealedLocked(name, raw[len(sealedTag):])
	}
	return nil, fmt.Errorf("reading secret %s: the keychain entry has an unknown format", name)
}

// Set stores value under name, replacing what was there.
func (v *Vault) Set(name string, value []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	enc := plainTag + base64.StdEncoding.EncodeToString(value)
	if len(enc) <= SealThreshold {
		err := v.kr.Set(v.service, secretPrefix+name, enc)
		if err == nil {
			return v.removeSealedLocked(name)
		}
		if !errors.Is(err, keyring.ErrSetDataTooBig) {
			return fmt.Errorf("%w: storing secret %s: %v", ErrUnavailable, name, err)
		}
		// This keychain is smaller than we thought: seal it instead.
	}
	sum, err := v.writeSealedLocked(name, value)
	if err != nil {
		return err
	}
	if err := v.kr.Set(v.service, secretPrefix+name, sealedTag+sum); err != nil {
		return fmt.Errorf("%w: storing secret %s: %v", ErrUnavailable, name, err)
	}
	return nil
}

// Delete removes the secret stored under name; deleting a missing secret is
// not an error.
func (v *Vault) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.kr.Delete(v.service, secretPrefix+name)
	if err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return fmt.Errorf("%w: deleting secret %s: %v", ErrUnavailable, name, err)
	}
	return v.removeSealedLocked(name)
}

// dirLocked returns the directory for sealed files. v.mu must be held.
func (v *Vault) dirLocked() (string, error) {
	if v.dir != "" {
		return v.dir, nil
	}
	d, err := DefaultDir()
	if err != nil {
		return "", err
	}
	v.dir = d
	return d, nil
}

func (v *Vault) sealedPathLocked(name string) (string, error) {
	dir, err := v.dirLocked()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, fileName(name)), nil
}

func (v *Vault) removeSealedLocked(name string) error {
	p, err := v.sealedPathLocked(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing sealed secret %s: %w", name, err)
	}
	return nil
}

// dataKeyLocked loads the data key from the keychain, creating it when
// create is set and there is none. v.mu must be held.
func (v *Vault) dataKeyLocked(create bool) ([]byte, error) {
	if v.key != nil {
		return v.key, nil
	}
	raw, err := v.kr.Get(v.service, dataKeyKey)
	switch {
	case err == nil:
		k, derr := hex.DecodeString(raw)
		if derr != nil || len(k) != keySize {
			return nil, errors.New("the vault's data key in the keychain is corrupt")
		}
		v.key = k
		return k, nil
	case !errors.Is(err, keyring.ErrNotFound):
		return nil, fmt.Errorf("%w: reading the vault's data key: %v", ErrUnavailable, err)
	case !create:
		return nil, fmt.Errorf("the vault's data key is missing from the keychain: %w", ErrNotFound)
	}
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := v.kr.Set(v.service, dataKeyKey, hex.EncodeToString(k)); err != nil {
		return nil, fmt.Errorf("%w: storing the vault's data key: %v", ErrUnavailable, err)
	}
	v.key = k
	return k, nil
}

// writeSealedLocked seals value into the entry's file and returns what
// the keychain entry records of it (fileSum): every write seals under a
// fresh random nonce, so no two writes' files share it.
func (v *Vault) writeSealedLocked(name string, value []byte) (string, error) {
	key, err := v.dataKeyLocked(true)
	if err != nil {
		return "", err
	}
	sealed, err := seal(key, name, value)
	if err != nil {
		return "", fmt.Errorf("sealing secret %s: %w", name, err)
	}
	p, err := v.sealedPathLocked(name)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(p, sealed); err != nil {
		return "", fmt.Errorf("writing sealed secret %s: %w", name, err)
	}
	return fileSum(sealed), nil
}

// readSealedLocked opens the entry's sealed file, which must be the one
// whose fileSum the keychain entry recorded (sum): another copy, even one
// this vault wrote earlier for the same entry, is ErrTampered.
func (v *Vault) readSealedLocked(name, sum string) ([]byte, error) {
	p, err := v.sealedPathLocked(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading secret %s: %w", name, ErrSealedFileMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("reading sealed secret %s: %w", name, err)
	}
	if !sameSum(sum, b) {
		return nil, fmt.Errorf("reading secret %s: %w: %w", name, ErrTampered, errNotThisVersion)
	}
	key, err := v.dataKeyLocked(false)
	if err != nil {
		return nil, fmt.Errorf("reading secret %s: %w", name, err)
	}
	value, err := unseal(key, name, b)
	if err != nil {
		return nil, fmt.Errorf("reading secret %s: %w", name, err)
	}
	return value, nil
}

// writeAtomic replaces path with data: a private temporary file in the
// same directory, synced, then renamed over the old one.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".sealed-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every platform syncs directories
		d.Close()
	}
	return nil
}
