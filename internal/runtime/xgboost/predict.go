package xgboost

import (
	"fmt"
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
	m.parallel(len(rows), func(lo, hi int, margins []float32, _ *[blockRows][]float32) {
		for b := lo; b < hi; b += blockRows {
			e := min(b+blockRows, hi)
			m.predictBlock(rows[b:e], out[b*m.NumOutputs():e*m.NumOutputs()], margins)
		}
	})
}

// PredictDense scores len(data)/NumFeatures rows stored one after another
// in data (NaN for a missing value) into out, which must hold
// rows*NumOutputs values.
func (m *Model) PredictDense(data []float32, out []float32) {
	if len(data)%m.nFeature != 0 {
		panic(fmt.Sprintf("xgboost: PredictDense: %d values is not a multiple of %d features", len(data), m.nFeature))
	}
	n := len(data) / m.nFeature
	m.checkOut(n, out)
	nf, no := m.nFeature, m.NumOutputs()
	m.parallel(n, func(lo, hi int, margins []float32, rows *[blockRows][]float32) {
		for b := lo; b < hi; b += blockRows {
			e := min(b+blockRows, hi)
			for i := b; i < e; i++ {
				rows[i-b] = data[i*nf : (i+1)*nf : (i+1)*nf]
			}
			m.predictBlock(rows[:e-b], out[b*no:e*no], margins)
		}
	})
}

func (m *Model) checkOut(n int, out []float32) {
	if want := n * m.NumOutputs(); len(out) < want {
		panic(fmt.Sprintf("xgboost: Predict: out holds %d values, want %d", len(out), want))
	}
}

// parallel splits n rows into block-aligned ranges, one per thread, and runs
// fn on each with its own scratch. It returns when every range is done.
func (m *Model) parallel(n int, fn func(lo, hi int, margins []float32, rows *[blockRows][]float32)) {
	threads := m.threads
	// Below a few blocks per thread the goroutines cost more than they save.
	if threads > 1 && n < threads*4*blockRows {
		threads = max(n/(4*blockRows), 1)
	}
	if threads <= 1 {
		var rows [blockRows][]float32
		fn(0, n, make([]float32, blockRows*m.nGroup), &rows)
		return
	}
	per := (n/blockRows + threads - 1) / threads * blockRows
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() {
			var rows [blockRows][]float32
			fn(lo, hi, make([]float32, blockRows*m.nGroup), &rows)
		})
	}
	wg.Wait()
}

// predictBlock scores up to blockRows rows. margins is scratch of
// blockRows*nGroup values.
func (m *Model) predictBlock(rows [][]float32, out, margins []float32) {
	ng := m.nGroup
	margins = margins[:len(rows)*ng]
	for i := range margins {
		margins[i] = m.base
	}
	nodes := m.nodes
	if ng == 1 {
		for t, root := range m.roots {
			walkBlock(nodes, root, m.depths[t], rows, margins, 1, 0)
		}
	} else {
		for t, root := range m.roots {
			walkBlock(nodes, root, m.depths[t], rows, margins, ng, int(m.groups[t]))
		}
	}
	no := m.NumOutputs()
	for r := range rows {
		m.objective.apply(margins[r*ng:(r+1)*ng], out[r*no:(r+1)*no])
	}
}

// walkBlock adds one tree's leaf value to margins[r*stride+group] for each
// row r. It walks four rows at a time, depth steps each, with no branches in
// the step so the four walks overlap in the CPU.
func walkBlock(nodes []node, root, depth int32, rows [][]float32, margins []float32, stride, group int) {
	r := 0
	for ; r+4 <= len(rows); r += 4 {
		r0, r1, r2, r3 := rows[r], rows[r+1], rows[r+2], rows[r+3]
		i0, i1, i2, i3 := root, root, root, root
		for range depth {
			i0 = step(&nodes[i0], r0)
			i1 = step(&nodes[i1], r1)
			i2 = step(&nodes[i2], r2)
			i3 = step(&nodes[i3], r3)
		}
		margins[r*stride+group] += nodes[i0].leaf
		margins[(r+1)*stride+group] += nodes[i1].leaf
		margins[(r+2)*stride+group] += nodes[i2].leaf
		margins[(r+3)*stride+group] += nodes[i3].leaf
	}
	for ; r < len(rows); r++ {
		row, i := rows[r], root
		for range depth {
			i = step(&nodes[i], row)
		}
		margins[r*stride+group] += nodes[i].leaf
	}
}

// step moves one level down: right when x >= threshold, and for a missing x
// (NaN) right unless the node's default is left. XGBoost goes left when
// x < threshold, so x >= threshold is the same test for every non-NaN x. A
// leaf (NaN threshold, default left) steps to itself.
func step(nd *node, row []float32) int32 {
	x := row[nd.feat&featMask]
	right := b2i(x >= nd.value) | (b2i(x != x) & int32(nd.feat>>31^1))
	return nd.left + right
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
