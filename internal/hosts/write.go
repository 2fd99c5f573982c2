package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// backupInfix sits between the file name and the UTC timestamp of a backup:
// "mcp.json.countersign-backup-20261121T101500Z".
const backupInfix = ".countersign-backup-"

// Saved says what Save wrote.
type Saved struct {
	Path    string   // the file written (symlinks resolved); "" if it did not change
	Backup  string   // the copy of its previous contents; "" if it was new or unchanged
	Sidecar string   // the turned-off entries file written or removed; "" if untouched
	Changes []string // what changed, as Changes reported
	Diff    string   // the masked before/after diff, as Diff reported
}

// Save writes the edits: a backup of the previous file first (mode 0600,
// next to it), then the new content atomically (a temporary file in the same
// directory, synced, then renamed over the old one) with the old file's mode,
// or 0600 for a new file. A file that holds Countersign's token (see
// [Config.HoldsToken]) is always written 0600, whatever its mode was: AI
// apps create theirs readable by every user of the machine. (On Windows the
// mode only sets the read-only flag; there the files live in the person's
// profile, whose access list already keeps other users out, and the
// temporary file inherits it.) Symlinks are followed, so a linked file stays
// linked. When nothing changed it writes nothing. It fails with ErrChanged if
// the file changed on disk since Load, and ErrReadOnly if the file is not
// writable by its owner.
func (c *Config) Save() (Saved, error) {
	if !c.Changed() {
		return Saved{}, nil
	}
	out := Saved{Changes: c.Changes(), Diff: c.Diff()}
	data := c.bytes()
	hostChanged := !bytes.Equal(data, c.orig)

	disk, fi, err := readLimited(c.real)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if c.exists {
			return Saved{}, fmt.Errorf("saving %s: %w", c.path, ErrChanged)
		}
	case err != nil:
		return Saved{}, fmt.Errorf("saving: %w", err)
	default:
		if !c.exists || !bytes.Equal(disk, c.orig) {
			return Saved{}, fmt.Errorf("saving %s: %w", c.path, ErrChanged)
		}
		if hostChanged && fi.Mode().Perm()&0o200 == 0 {
			return Saved{}, fmt.Errorf("saving %s: %w", c.path, ErrReadOnly)
		}
	}
	side, err := readSidecar(c.sidecarPath)
	if err != nil {
		return Saved{}, err
	}
	if !slices.EqualFunc(side, c.sideOrig, DisabledEntry.equal) {
		return Saved{}, fmt.Errorf("saving %s: %w", c.sidecarPath, ErrChanged)
	}
	if err := os.MkdirAll(filepath.Dir(c.real), 0o700); err != nil {
		return Saved{}, fmt.Errorf("saving %s: %w", c.path, err)
	}

	// Record entries being turned off before they leave the host file, and
	// forget entries being turned on only after they are back in it.
	union := slices.Clone(c.sideOrig)
	for _, e := range c.side {
		if !slices.ContainsFunc(union, func(u DisabledEntry) bool { return u.equal(e) }) {
			union = append(union, e)
		}
	}
	if !slices.EqualFunc(union, c.sideOrig, DisabledEntry.equal) {
		if err := writeSidecar(c.sidecarPath, union); err != nil {
			return Saved{}, err
		}
		out.Sidecar = c.sidecarPath
	}
	if hostChanged {
		if c.exists {
			if out.Backup, err = writeBackup(c.real, c.orig, c.e.now().UTC().Format("20060102T150405Z")); err != nil {
				return Saved{}, err
			}
		}
		mode := c.mode
		if c.HoldsToken() {
			mode = 0o600
		}
		if err := writeAtomic(c.real, data, mode); err != nil {
			return Saved{}, err
		}
		c.mode = mode
		out.Path = c.real
	}
	if !slices.EqualFunc(c.side, union, DisabledEntry.equal) {
		if err := writeSidecar(c.sidecarPath, c.side); err != nil {
			return Saved{}, err
		}
		out.Sidecar = c.sidecarPath
	}

	c.orig, c.exists = bytes.Clone(data), true
	c.sideOrig = slices.Clone(c.side)
	c.changes = nil
	c.e.log.Info("hosts: saved AI app configuration", "host", string(c.host), "path", c.real,
		"backup", out.Backup, "changes", out.Changes)
	return out, nil
}

func writeSidecar(p string, entries []DisabledEntry) error {
	if len(entries) == 0 {
		return removeFile(p)
	}
	data, err := encodeSidecar(entries)
	if err != nil {
		return err
	}
	return writeAtomic(p, data, 0o600)
}

// writeBackup writes data to a new file next to p, never replacing one.
func writeBackup(p string, data []byte, stamp string) (string, error) {
	for n := 1; n < 100; n++ {
		name := p + backupInfix + stamp
		if n > 1 {
			name += "-" + strconv.Itoa(n)
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("backing up %s: %w", p, err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
			return "", fmt.Errorf("backing up %s: %w", p, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("backing up %s: too many backups named %s", p, p+backupInfix+stamp)
}

// writeAtomic replaces p with data: a temporary file in the same directory is
// written, synced and given mode perm, then renamed over p.
func writeAtomic(p string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".countersign-tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = os.Rename(tmp, p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable where the OS supports syncing a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // not supported on every OS; the rename already happened
		d.Close()
	}
}

// MakePrivate makes the file, as Load read it, readable only by its owner
// when it holds one of Countersign's local tokens (those of its entries, or
// any of tokens anywhere in it) and other users may read it: an AI app, an
// older Countersign or the person may have written it 0644. Only the group
// and other permission bits are cleared (0644 becomes 0600; a read-only file
// stays read-only). It reports whether it changed the mode. It changes
// nothing when the file no longer holds what Load read (ErrChanged), and
// does nothing on Windows, where the mode only sets the read-only flag and
// the files live in the person's profile, whose access list already keeps
// other users out. The token is never logged.
func (c *Config) MakePrivate(tokens ...string) (bool, error) {
	if !c.exists {
		return false, nil
	}
	private, changed, err := c.e.makePrivate(c.host, c.path, c.real, func(data []byte) (bool, error) {
		if !bytes.Equal(data, c.orig) {
			return false, fmt.Errorf("making %s private: %w", c.path, ErrChanged)
		}
		return holdsAny(data, c.secrets) || holdsAny(data, tokens), nil
	})
	if changed {
		c.mode = private
	}
	return changed, err
}

// MakePrivate makes host h's file at path readable only by its owner when
// it holds any of tokens, as [Config.MakePrivate] does, without parsing it:
// for a file Load refuses (a mistake in it) that still holds the token.
// A missing file is left alone.
func (e *Editor) MakePrivate(h Host, path string, tokens ...string) (bool, error) {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("making %s private: %w", path, err)
	}
	_, changed, err := e.makePrivate(h, path, real, func(data []byte) (bool, error) {
		return holdsAny(data, tokens), nil
	})
	return changed, err
}

// makePrivate clears the group and other bits of the file at real (path
// as given) when holds says its content holds a token.
func (e *Editor) makePrivate(h Host, path, real string, holds func([]byte) (bool, error)) (fs.FileMode, bool, error) {
	if e.goos == "windows" {
		return 0, false, nil
	}
	f, err := os.Open(real)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, fmt.Errorf("making %s private: %w", path, ErrChanged)
	}
	if err != nil {
		return 0, false, fmt.Errorf("making %s private: %w", path, err)
	}
	defer f.Close()
	// Read, check and change the same open file, so a file swapped in
	// meanwhile is never the one changed.
	data, fi, err := readOpen(f, real)
	if err != nil {
		return 0, false, fmt.Errorf("making %s private: %w", path, err)
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return perm, false, nil
	}
	if ok, err := holds(data); err != nil || !ok {
		return perm, false, err
	}
	private := perm &^ 0o077
	if err := f.Chmod(private); err != nil {
		return perm, false, fmt.Errorf("making %s private: %w", path, err)
	}
	e.log.Info("hosts: made an AI app's configuration file readable only by its owner, because it holds Countersign's access key",
		"host", string(h), "path", real, "was", perm.String(), "now", private.String())
	return private, true, nil
}

// holdsAny reports whether data contains one of tokens (each at least four
// bytes long; shorter ones would match by chance).
func holdsAny(data []byte, tokens []string) bool {
	for _, t := range tokens {
		if len(t) >= 4 && bytes.Contains(data, []byte(t)) {
			return true
		}
	}
	return false
}
