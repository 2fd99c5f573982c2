//go:build !linux || !cgo

package main

import "runtime/debug"

// releaseMemory hands the Go heap's free memory back to the OS.
func releaseMemory() { debug.FreeOSMemory() }
