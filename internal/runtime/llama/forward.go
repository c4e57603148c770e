package llama

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/inferbox/inferbox/internal/gguf"
)

// seqState is one sequence's KV cache, position and last logits. Weights
// are shared; a seqState belongs to one generation at a time.
type seqState struct {
	logits         []float32
	kcache, vcache [][]float32 // per layer, pos*kvDim, grown on demand
	pos            int         // positions already in the cache
}

func (m *Model) newState() *seqState {
	return &seqState{
		logits: make([]float32, m.w.output.rows),
		kcache: make([][]float32, m.h.nLayer), vcache: make([][]float32, m.h.nLayer),
	}
}

// item is one token of one sequence in a batch: it is written to the
// sequence's KV cache at pos, and with logits set the next-token logits
// after it land in s.logits.
type item struct {
	s      *seqState
	tok    int
	pos    int
	logits bool
}

// scratch holds a batch's activations, one row per item. It is reused
// between batches; only one batch uses it at a time.
type scratch struct {
	x, xb, xb2, q, k, v, hb, hb2 []float32
	cos, sin                     []float64
	att                          [][]float32 // one attention buffer per worker
	work                         [][]float32 // one quantized-product buffer per worker
	in                           inputs      // the inputs of the current products, quantized
}

// rows returns the n per-item slices of width w in buf.
func rows(buf []float32, n, w int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = buf[i*w : (i+1)*w : (i+1)*w]
	}
	return out
}

func (sc *scratch) ensure(h hparams, n, workers int) {
	need := func(b []float32, size int) []float32 {
		if cap(b) < size {
			return make([]float32, size)
		}
		return b[:size]
	}
	kvDim := h.nHeadKV * h.headDim
	sc.x = need(sc.x, n*h.nEmbd)
	sc.xb = need(sc.xb, n*h.nEmbd)
	sc.xb2 = need(sc.xb2, n*h.nEmbd)
	sc.q = need(sc.q, n*h.nEmbd)
	sc.k = need(sc.k, n*kvDim)
	sc.v = need(sc.v, n*kvDim)
	sc.hb = need(sc.hb, n*h.nFF)
	sc.hb2 = need(sc.hb2, n*h.nFF)
	if cap(sc.cos) < n*h.nRot/2 {
		sc.cos, sc.sin = make([]float64, n*h.nRot/2), make([]float64, n*h.nRot/2)
	}
	sc.cos, sc.sin = sc.cos[:n*h.nRot/2], sc.sin[:n*h.nRot/2]
	for len(sc.att) < workers {
		sc.att = append(sc.att, make([]float32, h.nCtx))
	}
	for len(sc.work) < workers {
		sc.work = append(sc.work, nil)
	}
	for w := range sc.work[:workers] {
		if cap(sc.work[w]) < workSize(n) {
			sc.work[w] = make([]float32, workSize(n))
		}
	}
}

func rmsnorm(out, x, w []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	scale := float32(1 / math.Sqrt(float64(ss/float32(len(x))+eps)))
	for i, v := range x {
		out[i] = w[i] * (v * scale)
	}
}

// rope rotates the first nRot dimensions of each head of vec in place by
// the angles whose cosines and sines are given.
func (m *Model) rope(vec []float32, heads int, cos, sin []float64) {
	h := m.h
	half := h.nRot / 2
	for hd := 0; hd < heads; hd++ {
		v := vec[hd*h.headDim : (hd+1)*h.headDim]
		for i := 0; i < half; i++ {
			c, sn := float32(cos[i]), float32(sin[i])
			var a, b *float32
			if h.ropeNeox {
				a, b = &v[i], &v[i+half]
			} else {
				a, b = &v[2*i], &v[2*i+1]
			}
			x0, x1 := *a, *b
			*a = x0*c - x1*sn
			*b = x0*sn + x1*c
		}
	}
}

// grow makes room in a KV cache slice for need elements.
func grow(c []float32, need, limit int) []float32 {
	if need <= len(c) {
		return c
	}
	if need <= cap(c) {
		return c[:need]
	}
	n := max(need, 2*cap(c), 64)
	n = min(n, limit)
	nc := make([]float32, need, n)
	copy(nc, c)
	return nc
}

// forward runs one token of s at s.pos and advances it; with wantLogits,
// s.logits holds the next-token logits afterwards.
func (m *Model) forward(s *seqState, tok int, wantLogits bool) {
	var sc scratch
	m.forwardBatch(&sc, []item{{s: s, tok: tok, pos: s.pos, logits: wantLogits}})
}

// forwardBatch runs a batch of tokens — several positions of one sequence
// (prompt processing) and/or the next position of several sequences
// (decoding them together) — through the model. Each weight matrix is
// read once per batch and multiplied with every item's activations. The
// items of one sequence must be in increasing position order and
// contiguous with its cache; afterwards each sequence's pos is past its
// last item. Every item's arithmetic is the same whatever else is in the
// batch, so batching never changes a generation's output.
func (m *Model) forwardBatch(sc *scratch, items []item) {
	h, w, th := m.h, m.w, m.threads
	n := len(items)
	kvDim := h.nHeadKV * h.headDim
	half := h.nRot / 2
	sc.ensure(h, n, th)
	x, xb, xb2 := rows(sc.x, n, h.nEmbd), rows(sc.xb, n, h.nEmbd), rows(sc.xb2, n, h.nEmbd)
	q, k, v := rows(sc.q, n, h.nEmbd), rows(sc.k, n, kvDim), rows(sc.v, n, kvDim)
	hb, hb2 := rows(sc.hb, n, h.nFF), rows(sc.hb2, n, h.nFF)
	for i, it := range items {
		w.tokEmbd.row(it.tok, x[i])
		for j := 0; j < half; j++ {
			sc.sin[i*half+j], sc.cos[i*half+j] = math.Sincos(float64(it.pos) * m.freqs[j])
		}
	}
	limit := h.nCtx * kvDim
	for li := range w.layers {
		l := &w.layers[li]
		for i := range items {
			rmsnorm(xb[i], x[i], l.attnNorm, h.eps)
		}
		in := sc.in.reset(xb)
		l.wq.mulMat(q, in, th, sc)
		l.wk.mulMat(k, in, th, sc)
		l.wv.mulMat(v, in, th, sc)
		for i, it := range items {
			if l.bq != nil {
				addTo(q[i], l.bq)
				addTo(k[i], l.bk)
				addTo(v[i], l.bv)
			}
			cos, sin := sc.cos[i*half:(i+1)*half], sc.sin[i*half:(i+1)*half]
			m.rope(q[i], h.nHead, cos, sin)
			m.rope(k[i], h.nHeadKV, cos, sin)
			s := it.s
			s.kcache[li] = grow(s.kcache[li], (it.pos+1)*kvDim, limit)
			s.vcache[li] = grow(s.vcache[li], (it.pos+1)*kvDim, limit)
			copy(s.kcache[li][it.pos*kvDim:], k[i])
			copy(s.vcache[li][it.pos*kvDim:], v[i])
		}
		parallel(n, th, n > 1, func(worker, lo, hi int) {
			for i := lo; i < hi; i++ {
				m.attention(items[i], li, q[i], xb[i], sc.att[worker])
			}
		})
		l.wo.mulMat(xb2, sc.in.reset(xb), th, sc)
		for i := range items {
			addTo(x[i], xb2[i])
			rmsnorm(xb[i], x[i], l.ffnNorm, h.eps)
		}
		in = sc.in.reset(xb)
		l.gate.mulMat(hb, in, th, sc)
		l.up.mulMat(hb2, in, th, sc)
		for i := range items {
			gguf.SiLUMul(hb[i], hb2[i])
		}
		l.down.mulMat(xb, sc.in.reset(hb), th, sc)
		for i := range items {
			addTo(x[i], xb[i])
		}
	}
	var outs, ins [][]float32
	for i, it := range items {
		it.s.pos = max(it.s.pos, it.pos+1)
		if it.logits {
			rmsnorm(xb[i], x[i], w.outNorm, h.eps)
			outs = append(outs, it.s.logits)
			ins = append(ins, xb[i])
		}
	}
	if len(outs) > 0 {
		w.output.mulMat(outs, sc.in.reset(ins), th, sc)
	}
}

// attention computes the attention output of one item (its query q
// against its sequence's cache up to its position) into out.
func (m *Model) attention(it item, li int, q, out, att []float32) {
	h := m.h
	kvDim := h.nHeadKV * h.headDim
	group := h.nHead / h.nHeadKV
	scale := float32(1 / math.Sqrt(float64(h.headDim)))
	kc, vc := it.s.kcache[li], it.s.vcache[li]
	pos := it.pos
	att = att[:pos+1]
	for hd := 0; hd < h.nHead; hd++ {
		qh := q[hd*h.headDim : (hd+1)*h.headDim]
		kvOff := (hd / group) * h.headDim
		gguf.MulRowsStrideF32(att, kc[kvOff:], kvDim, h.headDim, qh)
		maxv := scaleMax(att, scale)
		gguf.ExpShift(att, maxv)
		var sum float32
		for _, e := range att {
			sum += e
		}
		inv := 1 / sum
		for t, a := range att {
			att[t] = a * inv
		}
		gguf.WeightedSumF32(out[hd*h.headDim:(hd+1)*h.headDim], vc[kvOff:], kvDim, att)
	}
}

// parallel calls f over [0, n) split into ranges on up to threads
// goroutines started and waited for here (on the caller alone when split
// is false or threads is 1). Each goroutine takes the next range of about
// n/(8·threads) when it is done with its last, so a worker slowed by
// other work on its core (or ranges of unequal cost, like attention over
// increasing positions) holds up the others little. worker numbers the
// goroutines from 0; f never runs twice at once with the same worker.
func parallel(n, threads int, split bool, f func(worker, lo, hi int)) {
	if !split || threads <= 1 || n < 2 {
		f(0, 0, n)
		return
	}
	workers := min(threads, n)
	grain := max(1, n/(8*workers))
	var next atomic.Int64
	run := func(w int) {
		for {
			hi := int(next.Add(int64(grain)))
			lo := hi - grain
			if lo >= n {
				return
			}
			f(w, lo, min(hi, n))
		}
	}
	var wg sync.WaitGroup
	for wk := 1; wk < workers; wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(wk)
		}()
	}
	run(0)
	wg.Wait()
}

// scaleMax multiplies every element of x by scale and returns the
// largest product (four running maxima, for speed: the maximum does not
// depend on the order).
func scaleMax(x []float32, scale float32) float32 {
	m0, m1, m2, m3 := float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))
	t := 0
	for ; t+4 <= len(x); t += 4 {
		v := x[t : t+4 : t+4]
		a0, a1, a2, a3 := v[0]*scale, v[1]*scale, v[2]*scale, v[3]*scale
		v[0], v[1], v[2], v[3] = a0, a1, a2, a3
		m0, m1, m2, m3 = max(m0, a0), max(m1, a1), max(m2, a2), max(m3, a3)
	}
	for ; t < len(x); t++ {
		x[t] *= scale
		m0 = max(m0, x[t])
	}
	return max(m0, m1, m2, m3)
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}
