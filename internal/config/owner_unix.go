//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// ownedByRoot reports whether the file belongs to root.
func ownedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
