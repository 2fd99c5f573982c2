package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
)

// The sealed file format, all of it authenticated:
//
//	magic   4 bytes  "CSv1"
//	key id  8 bytes  the first 8 bytes of SHA-256("countersign data key" || key)
//	nonce  12 bytes  random
//	sealed  rest     AES-256-GCM of the value, with associated data
//	                 "countersign vault v1\x00" || entry name
//
// The entry name as associated data means a file copied over another
// entry's fails to open; the key id tells "sealed under another key" apart
// from tampering in the error. The name does not tell one write of an entry
// from the next: the keychain entry records the SHA-256 of the file each
// write made (fileSum), and a read opens only that file, so an older copy
// restored in its place (a rollback) fails too.
const (
	magic     = "CSv1"
	keySize   = 32
	keyIDSize = 8
	nonceSize = 12
	headerLen = len(magic) + keyIDSize + nonceSize
)

var (
	errOtherKey       = errors.New("sealed under a different data key")
	errNotThisVersion = errors.New("not the sealed file last written")
)

// fileSum is what a keychain entry records of its sealed file: the
// SHA-256 of the whole file, hex.
func fileSum(sealed []byte) string {
	h := sha256.Sum256(sealed)
	return hex.EncodeToString(h[:])
}

// sameSum reports whether sealed is the file whose fileSum is sum. An entry
// recording no sum (written before sums were recorded) matches no file:
// the version it meant can't be told.
func sameSum(sum string, sealed []byte) bool {
	want, err := hex.DecodeString(sum)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256(sealed)
	return subtle.ConstantTimeCompare(want, got[:]) == 1
}

func keyID(key []byte) []byte {
	h := sha256.Sum256(append([]byte("countersign data key"), key...))
	return h[:keyIDSize]
}

func associatedData(name string) []byte {
	return append([]byte("countersign vault v1\x00"), name...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts value for the entry name under key.
func seal(key []byte, name string, value []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen, headerLen+len(value)+aead.Overhead())
	copy(out, magic)
	copy(out[len(magic):], keyID(key))
	nonce := out[len(magic)+keyIDSize : headerLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(out, nonce, value, associatedData(name)), nil
}

// unseal opens a sealed file for the entry name. Its input comes from disk
// and is treated as untrusted.
func unseal(key []byte, name string, data []byte) ([]byte, error) {
	if len(data) < headerLen || string(data[:len(magic)]) != magic {
		return nil, ErrTampered
	}
	id := data[len(magic) : len(magic)+keyIDSize]
	if !bytes.Equal(id, keyID(key)) {
		return nil, fmt.Errorf("%w: %w", ErrTampered, errOtherKey)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := data[len(magic)+keyIDSize : headerLen]
	value, err := aead.Open(nil, nonce, data[headerLen:], associatedData(name))
	if err != nil {
		return nil, ErrTampered
	}
	return value, nil
}

// fileName is the sealed file of an entry: a hash, so entry names (which
// hold server ids) do not show in the directory listing.
func fileName(name string) string {
	h := sha256.Sum256([]byte("countersign entry\x00" + name))
	return hex.EncodeToString(h[:20]) + ".sealed"
}
