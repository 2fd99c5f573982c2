// Package pins records each server's tools the first time they are listed
// and reports later changes, so a tool whose description or schema changed
// cannot slip past the person unnoticed.
//
// A pin is the tool's definition as first seen: name, title, description,
// input and output schema and annotations, in canonical JSON with its
// SHA-256. Pins persist in a JSON file (they are not secret) and change
// only when the person accepts a new definition.
package pins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"
)

// pinnedFields are the members of a tool definition a pin covers. Others
// (such as _meta or icons) may change freely.
var pinnedFields = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Pin is a tool's definition as first seen.
type Pin struct {
	Hash       string          `json:"hash"`
	Definition json.RawMessage `json:"definition"` // canonical JSON of the pinned fields
	FirstSeen  time.Time       `json:"firstSeen"`
	// New is set for a tool that appeared after the server's first full
	// listing.
	New bool `json:"new,omitempty"`
}

// Status is what the store knows about one tool.
type Status struct {
	Pinned  *Pin            // nil when the tool was never listed
	Current json.RawMessage // the definition last listed, whole; nil if not listed since start
	// CurrentHash identifies Current, for Accept; empty when not listed.
	CurrentHash string
	Changed     bool   // the current definition differs from the pin
	Diff        string // a line diff of pinned → current when Changed
}

type serverPins struct {
	// Listed is set once a listing's last page (no nextCursor) was seen;
	// tools first seen after that are new.
	Listed bool            `json:"listed"`
	Tools  map[string]*Pin `json:"tools"`
}

// Store holds every server's pins. It is safe for concurrent use.
type Store struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	servers map[string]*serverPins
	current map[string]map[string]json.RawMessage // server → tool → last listed definition
	canon   map[string]map[string]json.RawMessage // server → tool → canonical pinned fields of current
	// last is each server's last listing and what Observe reported for
	// it: a server lists the same tools again and again, and the same
	// bytes give the same answer until a pin changes.
	last map[string]observed
}

type observed struct {
	result  []byte
	changed []string
}

type file struct {
	Version int                    `json:"version"`
	Servers map[string]*serverPins `json:"servers"`
}

// Open loads the pins kept at path; a missing file means none yet.
func Open(path string) (*Store, error) {
	s := &Store{
		path:    path,
		now:     time.Now,
		servers: make(map[string]*serverPins),
		current: make(map[string]map[string]json.RawMessage),
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("tool pins %s are damaged: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("tool pins %s have unknown version %d", path, f.Version)
	}
	for id, sp := range f.Servers {
		if sp != nil && sp.Tools != nil {
			s.servers[id] = sp
		}
	}
	return s, nil
}

// Observe records a tools/list result from server: tools never seen are
// pinned, and every tool's current definition is remembered. It returns
// the names of tools whose definition differs from their pin.
func (s *Store) Observe(server string, result json.RawMessage) (changed []string, err error) {
	s.mu.Lock()
	if o, ok := s.last[server]; ok && bytes.Equal(o.result, result) {
		s.mu.Unlock()
		return slices.Clone(o.changed), nil
	}
	s.mu.Unlock()
	var page struct {
		Tools      []json.RawMessage `json:"tools"`
		NextCursor *string           `json:"nextCursor"`
	}
	if err := json.Unmarshal(result, &page); err != nil {
		return nil, fmt.Errorf("reading a tools/list result: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.servers[server]
	if sp == nil {
		sp = &serverPins{Tools: make(map[string]*Pin)}
		s.servers[server] = sp
	}
	cur := s.current[server]
	if cur == nil {
		cur = make(map[string]json.RawMessage)
		s.current[server] = cur
	}
	if s.canon == nil {
		s.canon = make(map[string]map[string]json.RawMessage)
	}
	curCanon := s.canon[server]
	if curCanon == nil {
		curCanon = make(map[string]json.RawMessage)
		s.canon[server] = curCanon
	}
	dirty := false
	for _, raw := range page.Tools {
		name, canon, err := canonical(raw)
		if err != nil {
			continue // not a tool definition we can read; nothing to pin
		}
		cur[name] = raw
		curCanon[name] = canon
		pin := sp.Tools[name]
		if pin == nil {
			sp.Tools[name] = &Pin{Hash: hash(canon), Definition: canon, FirstSeen: s.now().UTC(), New: sp.Listed}
			dirty = true
			continue
		}
		if pin.Hash != hash(canon) {
			changed = append(changed, name)
		}
	}
	if page.NextCursor == nil && !sp.Listed {
		sp.Listed = true
		dirty = true
	}
	if dirty {
		if err := s.saveLocked(); err != nil {
			return changed, err
		}
	}
	sort.Strings(changed)
	if s.last == nil {
		s.last = make(map[string]observed)
	}
	s.last[server] = observed{result: bytes.Clone(result), changed: slices.Clone(changed)}
	return changed, nil
}

// Status reports what is known of server's tool.
func (s *Store) Status(server, tool string) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Status
	if sp := s.servers[server]; sp != nil {
		if p := sp.Tools[tool]; p != nil {
			cp := *p
			st.Pinned = &cp
		}
	}
	st.Current = s.current[server][tool]
	canon := s.canon[server][tool]
	if st.Current == nil || canon == nil {
		return st
	}
	st.CurrentHash = hash(canon)
	if st.Pinned != nil && st.CurrentHash != st.Pinned.Hash {
		st.Changed = true
		st.Diff = Diff(indent(st.Pinned.Definition), indent(canon))
	}
	return st
}

// ErrChangedAgain means the definition a person was shown is no longer the
// current one, so trusting it would trust something nobody has read.
var ErrChangedAgain = errors.New("the tool changed again since it was shown: read the new change first")

// Accept pins the tool's current definition in place of the old one: the
// person has seen the change and trusts it. The tool is no longer new.
// want is the CurrentHash of the definition the person was shown; if the
// current one differs, nothing changes and the error is ErrChangedAgain.
func (s *Store) Accept(server, tool, want string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := s.current[server][tool]
	sp := s.servers[server]
	if raw == nil || sp == nil || sp.Tools[tool] == nil {
		return fmt.Errorf("tool %s of %s has not been listed since Countersign started", tool, server)
	}
	_, canon, err := canonical(raw)
	if err != nil {
		return err
	}
	if hash(canon) != want {
		return ErrChangedAgain
	}
	sp.Tools[tool] = &Pin{Hash: hash(canon), Definition: canon, FirstSeen: s.now().UTC()}
	delete(s.last, server)
	return s.saveLocked()
}

// Forget drops every pin of server, for a server the person removed.
func (s *Store) Forget(server string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.servers, server)
	delete(s.current, server)
	delete(s.canon, server)
	delete(s.last, server)
	return s.saveLocked()
}

// saveLocked writes the pins atomically. s.mu must be held.
func (s *Store) saveLocked() error {
	b, err := json.MarshalIndent(file{Version: 1, Servers: s.servers}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving tool pins: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".pins-*.tmp")
	if err != nil {
		return fmt.Errorf("saving tool pins: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("saving tool pins: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving tool pins: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving tool pins: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("saving tool pins: %w", err)
	}
	return nil
}

// canonical returns a tool's name and the canonical JSON of its pinned
// fields: object keys sorted, numbers as written, no insignificant space.
func canonical(raw json.RawMessage) (string, json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var def map[string]any
	if err := dec.Decode(&def); err != nil {
		return "", nil, err
	}
	name, _ := def["name"].(string)
	if name == "" {
		return "", nil, errors.New("tool definition has no name")
	}
	pinned := make(map[string]any, len(pinnedFields))
	for _, k := range pinnedFields {
		if v, ok := def[k]; ok {
			pinned[k] = v
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(pinned); err != nil {
		return "", nil, err
	}
	return name, bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func hash(canon []byte) string {
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// indent pretty-prints canonical JSON for a readable diff.
func indent(canon []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, canon, "", "  "); err != nil {
		return string(canon)
	}
	return b.String()
}
