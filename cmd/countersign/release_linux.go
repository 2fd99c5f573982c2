//go:build linux && cgo

package main

// #include <malloc.h>
import "C"

import "runtime/debug"

// releaseMemory hands memory freed since the last collection back to the
// OS: the Go heap's (FreeOSMemory) and the C allocator's (malloc_trim),
// which keeps what start-up code in C libraries freed.
func releaseMemory() {
	debug.FreeOSMemory()
	C.malloc_trim(0)
}
