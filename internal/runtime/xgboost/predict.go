package xgboost

import (
	"fmt"
	"math"
	"sync"
)

// blockRows is how many rows go through each tree before the next tree: the
// trees stay in cache while a block's rows do too.
const blockRows = 64

// Predict scores rows into out. Each row must hold NumFeatures values, NaN
// for a missing value; out must hold len(rows)*NumOutputs values. Predict
// panics if they do not: sizes are the caller's contract, checked at input
// parsing. Scores are what Booster.predict returns: probabilities for
// logistic and softprob objectives, the class index for multi:softmax.
func (m *Model) Predict(rows [][]float32, out []float32) {
	for i, r := range rows {
		if len(r) != m.nFeature {
			panic(fmt.Sprintf("xgboost: Predict: row %d has %d features, model has %d", i, len(r), m.nFeature))
		}
	}
	m.checkOut(len(rows), out)
	m.parallel(len(rows), func(lo, hi int, s *scratch) {
		for b := lo; b < hi; b += blockRows {
			e := min(b+blockRows, hi)
			for i := b; i < e; i++ {
				s.expand(i-b, rows[i])
			}
			m.predictBlock(s, e-b, out[b*m.NumOutputs():e*m.NumOutputs()])
		}
	})
}

// PredictDense scores len(data)/NumFeatures rows stored one after another
// in data (NaN for a missing value) into out, which must hold
// rows*NumOutputs values.
func (m *Model) PredictDense(data []float32, out []float32) {
	nf, no := m.nFeature, m.NumOutputs()
	if len(data)%nf != 0 {
		panic(fmt.Sprintf("xgboost: PredictDense: %d values is not a multiple of %d features", len(data), nf))
	}
	n := len(data) / nf
	m.checkOut(n, out)
	m.parallel(n, func(lo, hi int, s *scratch) {
		for b := lo; b < hi; b += blockRows {
			e := min(b+blockRows, hi)
			for i := b; i < e; i++ {
				s.expand(i-b, data[i*nf:(i+1)*nf])
			}
			m.predictBlock(s, e-b, out[b*no:e*no])
		}
	})
}

func (m *Model) checkOut(n int, out []float32) {
	if want := n * m.NumOutputs(); len(out) < want {
		panic(fmt.Sprintf("xgboost: Predict: out holds %d values, want %d", len(out), want))
	}
}

// scratch is one goroutine's working memory for a block of rows.
type scratch struct {
	slots   []float32 // blockRows rows of 2*nFeature slots (see node)
	width   int       // 2*nFeature
	margins []float32 // blockRows*nGroup
}

func (m *Model) newScratch() *scratch {
	return &scratch{
		slots:   make([]float32, blockRows*2*m.nFeature),
		width:   2 * m.nFeature,
		margins: make([]float32, blockRows*m.nGroup),
	}
}

// expand writes row r of the block as slots: x, x per feature, or -Inf, +Inf
// for a missing one.
func (s *scratch) expand(r int, row []float32) {
	dst := s.slots[r*s.width : (r+1)*s.width]
	for f, x := range row {
		lo, hi := x, x
		if x != x {
			lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
		}
		dst[2*f] = lo
		dst[2*f+1] = hi
	}
}

// parallel splits n rows into block-aligned ranges, one per thread, and runs
// fn on each with its own scratch. It returns when every range is done.
func (m *Model) parallel(n int, fn func(lo, hi int, s *scratch)) {
	threads := m.threads
	// Below a few blocks per thread the goroutines cost more than they save.
	if threads > 1 && n < threads*4*blockRows {
		threads = max(n/(4*blockRows), 1)
	}
	if threads <= 1 {
		fn(0, n, m.newScratch())
		return
	}
	per := (n/blockRows + threads - 1) / threads * blockRows
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() { fn(lo, hi, m.newScratch()) })
	}
	wg.Wait()
}

// predictBlock scores the first n rows expanded in s into out.
func (m *Model) predictBlock(s *scratch, n int, out []float32) {
	ng := m.nGroup
	margins := s.margins[:n*ng]
	for i := range margins {
		margins[i] = m.base
	}
	slots := s.slots[:n*s.width]
	for t, root := range m.roots {
		walkBlock(m.nodes, root, m.depths[t], slots, s.width, margins, ng, int(m.groups[t]))
	}
	no := m.NumOutputs()
	for r := range n {
		m.objective.apply(margins[r*ng:(r+1)*ng], out[r*no:(r+1)*no])
	}
}

// walkBlock adds one tree's leaf value to margins[r*stride+group] for each
// row r of slots (width slots per row). It walks four rows at a time, depth
// steps each, with no branch in a step, so the four walks overlap in the CPU.
func walkBlock(nodes []node, root, depth int32, slots []float32, width int, margins []float32, stride, group int) {
	n := len(slots) / width
	r := 0
	for ; r+8 <= n; r += 8 {
		o0 := r * width
		o1, o2, o3, o4, o5, o6, o7 := o0+width, o0+2*width, o0+3*width, o0+4*width, o0+5*width, o0+6*width, o0+7*width
		i0, i1, i2, i3 := int(root), int(root), int(root), int(root)
		i4, i5, i6, i7 := i0, i0, i0, i0
		for range depth {
			n0, n1, n2, n3 := &nodes[i0], &nodes[i1], &nodes[i2], &nodes[i3]
			i0 = int(n0.left) + b2int(slots[o0+int(n0.slot)] >= n0.value)
			i1 = int(n1.left) + b2int(slots[o1+int(n1.slot)] >= n1.value)
			i2 = int(n2.left) + b2int(slots[o2+int(n2.slot)] >= n2.value)
			i3 = int(n3.left) + b2int(slots[o3+int(n3.slot)] >= n3.value)
			n4, n5, n6, n7 := &nodes[i4], &nodes[i5], &nodes[i6], &nodes[i7]
			i4 = int(n4.left) + b2int(slots[o4+int(n4.slot)] >= n4.value)
			i5 = int(n5.left) + b2int(slots[o5+int(n5.slot)] >= n5.value)
			i6 = int(n6.left) + b2int(slots[o6+int(n6.slot)] >= n6.value)
			i7 = int(n7.left) + b2int(slots[o7+int(n7.slot)] >= n7.value)
		}
		margins[r*stride+group] += nodes[i0].leaf
		margins[(r+1)*stride+group] += nodes[i1].leaf
		margins[(r+2)*stride+group] += nodes[i2].leaf
		margins[(r+3)*stride+group] += nodes[i3].leaf
		margins[(r+4)*stride+group] += nodes[i4].leaf
		margins[(r+5)*stride+group] += nodes[i5].leaf
		margins[(r+6)*stride+group] += nodes[i6].leaf
		margins[(r+7)*stride+group] += nodes[i7].leaf
	}
	for ; r < n; r++ {
		o, i := r*width, root
		for range depth {
			nd := &nodes[i]
			i = nd.left + b2i(slots[o+int(nd.slot)] >= nd.value)
		}
		margins[r*stride+group] += nodes[i].leaf
	}
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func b2int(b bool) int {
	if b {
		return 1
	}
	return 0
}
