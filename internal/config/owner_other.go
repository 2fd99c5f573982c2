//go:build !unix

package config

import "io/fs"

// ownedByRoot: there is no root here; managed preferences are a macOS
// source and are not read on this OS.
func ownedByRoot(fs.FileInfo) bool { return false }
