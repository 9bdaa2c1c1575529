//go:build !linux

package storage

import "os"

// readFile is os.ReadFile; see readfile_linux.go.
func readFile(name string) ([]byte, error) { return os.ReadFile(name) }
