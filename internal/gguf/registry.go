package gguf

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Registry shares memory mappings of GGUF files: every Open of the same file
// (same path, size and modification time) returns a File backed by one
// read-only mapping, unmapped when the last holder closes. The composition
// root creates one Registry per process. The zero value is not usable; call
// NewRegistry.
type Registry struct {
	mu    sync.Mutex
	files map[fileKey]*mapping
}

type fileKey struct {
	path  string
	size  int64
	mtime time.Time
}

type mapping struct {
	refs   int
	data   []byte
	unmap  func() error
	parsed *File // shared header and index; holders get shallow copies
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{files: map[fileKey]*mapping{}} }

// Open maps and parses path, or shares an existing mapping of it.
func (r *Registry) Open(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gguf: %s is not a regular file", abs)
	}
	key := fileKey{abs, st.Size(), st.ModTime()}
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.files[key]
	if !ok {
		data, unmap, err := mapFile(abs)
		if err != nil {
			return nil, fmt.Errorf("gguf: map %s: %w", abs, err)
		}
		f, err := Parse(data)
		if err != nil {
			_ = unmap()
			return nil, fmt.Errorf("gguf: %s: %w", abs, err)
		}
		f.packs = &packCache{q8: map[string]*Q8Matrix{}, k: map[string]*KMatrix{}}
		m = &mapping{data: data, unmap: unmap, parsed: f}
		r.files[key] = m
	}
	m.refs++
	f := *m.parsed
	f.release = func() { r.release(key, m) }
	return &f, nil
}

func (r *Registry) release(key fileKey, m *mapping) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	if r.files[key] == m {
		delete(r.files, key)
	}
	_ = m.unmap()
}

// Mapped returns how many distinct files are mapped now (for tests and stats).
func (r *Registry) Mapped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.files)
}

// packCache holds the prepared (repacked) forms of one mapping's tensors,
// so that every instance of a model shares them as it shares the mapping.
type packCache struct {
	mu sync.Mutex
	q8 map[string]*Q8Matrix
	k  map[string]*KMatrix
}

// Q8Matrix returns the Q8_0 tensor t of f prepared for MulMat
// (NewQ8Matrix with rows rows of rowBytes bytes). Files from a Registry
// share one prepared copy per tensor for as long as the file is mapped, so
// loading a model again (another instance) neither repacks nor holds a
// second copy.
func (f *File) Q8Matrix(t *Tensor, rows, rowBytes int) (*Q8Matrix, error) {
	if f.packs == nil {
		return NewQ8Matrix(t.Data, rows, rowBytes)
	}
	f.packs.mu.Lock()
	defer f.packs.mu.Unlock()
	if q, ok := f.packs.q8[t.Name]; ok && q.Rows() == rows {
		return q, nil
	}
	q, err := NewQ8Matrix(t.Data, rows, rowBytes)
	if err != nil {
		return nil, err
	}
	f.packs.q8[t.Name] = q
	return q, nil
}

// KMatrix returns the Q4_K or Q6_K tensor t of f prepared for MulMat
// (NewKMatrix with rows rows of rowBytes bytes), shared per tensor by
// every File of one Registry mapping as Q8Matrix is.
func (f *File) KMatrix(t *Tensor, rows, rowBytes int) (*KMatrix, error) {
	if f.packs == nil {
		return NewKMatrix(t.Type, t.Data, rows, rowBytes)
	}
	f.packs.mu.Lock()
	defer f.packs.mu.Unlock()
	if k, ok := f.packs.k[t.Name]; ok && k.Rows() == rows {
		return k, nil
	}
	k, err := NewKMatrix(t.Type, t.Data, rows, rowBytes)
	if err != nil {
		return nil, err
	}
	f.packs.k[t.Name] = k
	return k, nil
}
