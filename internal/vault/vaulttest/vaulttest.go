// Package vaulttest provides an in-memory keychain, so tests and test
// commands never touch the person's real one.
package vaulttest

import (
	"sync"

	"github.com/zalando/go-keyring"
)

// Keyring is an in-memory vault.Keyring that behaves like go-keyring: a
// missing entry is keyring.ErrNotFound. It is safe for concurrent use.
type Keyring struct {
	mu sync.Mutex
	m  map[string]string
}

// NewKeyring returns an empty keychain.
func NewKeyring() *Keyring { return &Keyring{m: map[string]string{}} }

func key(service, user string) string { return service + "\x00" + user }

// Get returns the secret stored for service and user.
func (k *Keyring) Get(service, user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key(service, user)]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

// Set stores a secret for service and user.
func (k *Keyring) Set(service, user, password string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key(service, user)] = password
	return nil
}

// Delete removes the secret stored for service and user.
func (k *Keyring) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key(service, user)]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.m, key(service, user))
	return nil
}

// Len reports how many secrets are stored.
func (k *Keyring) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}
