//go:build !windows

package config

// programData is only meaningful on Windows.
func programData() string { return "" }
