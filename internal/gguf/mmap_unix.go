//go:build unix

package gguf

import (
	"errors"
	"os"
	"syscall"
)

// mapFile maps the whole file read-only and shared, so every process and
// instance reading it uses the same page-cache pages.
func mapFile(path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, nil, errors.New("empty file")
	}
	if size != int64(int(size)) {
		return nil, nil, errors.New("file too large to map")
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
