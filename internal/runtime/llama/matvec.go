package llama

import (
	"sync"

	"github.com/inferbox/inferbox/internal/gguf"
)

// parallelMin is the matrix size (elements) below which a mat-vec runs on
// the calling goroutine: for small matrices starting goroutines costs more
// than it saves.
const parallelMin = 1 << 16

// mulVec computes out = m·x, splitting rows across up to threads goroutines
// for large matrices. The goroutines are started and waited for here.
func (m *matrix) mulVec(out, x []float32, threads int) {
	if threads <= 1 || m.rows*m.cols < parallelMin || m.rows < 2*threads {
		m.rowsRange(out, x, 0, m.rows)
		return
	}
	var wg sync.WaitGroup
	chunk := (m.rows + threads - 1) / threads
	for lo := chunk; lo < m.rows; lo += chunk {
		hi := min(lo+chunk, m.rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.rowsRange(out, x, lo, hi)
		}()
	}
	m.rowsRange(out, x, 0, min(chunk, m.rows))
	wg.Wait()
}

func (m *matrix) rowsRange(out, x []float32, lo, hi int) {
	x = x[:m.cols]
	if m.f32 != nil {
		c := m.cols
		for r := lo; r < hi; r++ {
			out[r] = gguf.DotF32(m.f32[r*c:(r+1)*c], x)
		}
		return
	}
	typ, data, rb := m.t.Type, m.t.Data, m.rowB
	for r := lo; r < hi; r++ {
		out[r] = gguf.Dot(typ, data[r*rb:(r+1)*rb], x)
	}
}

// row decodes row r into dst (used for the embedding lookup).
func (m *matrix) row(r int, dst []float32) {
	if m.f32 != nil {
		copy(dst, m.f32[r*m.cols:(r+1)*m.cols])
		return
	}
	gguf.Dequantize(m.t.Type, m.t.Data[r*m.rowB:(r+1)*m.rowB], dst)
}
