package llama

import (
	"math"
)

// seqState is one sequence's activations and KV cache. Weights are shared;
// a seqState belongs to one generation at a time.
type seqState struct {
	x, xb, xb2     []float32
	q, k, v        []float32
	att            []float32
	hb, hb2        []float32
	logits         []float32
	kcache, vcache [][]float32 // per layer, pos*kvDim, grown on demand
	cos, sin       []float64
	pos            int
}

func (m *Model) newState() *seqState {
	h := m.h
	kvDim := h.nHeadKV * h.headDim
	s := &seqState{
		x: make([]float32, h.nEmbd), xb: make([]float32, h.nEmbd), xb2: make([]float32, h.nEmbd),
		q: make([]float32, h.nEmbd), k: make([]float32, kvDim), v: make([]float32, kvDim),
		att: make([]float32, h.nCtx), hb: make([]float32, h.nFF), hb2: make([]float32, h.nFF),
		logits: make([]float32, m.w.output.rows),
		kcache: make([][]float32, h.nLayer), vcache: make([][]float32, h.nLayer),
		cos: make([]float64, h.nRot/2), sin: make([]float64, h.nRot/2),
	}
	return s
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

// rope rotates the first nRot dimensions of each head of vec in place.
func (m *Model) rope(s *seqState, vec []float32, heads int) {
	h := m.h
	half := h.nRot / 2
	for hd := 0; hd < heads; hd++ {
		v := vec[hd*h.headDim : (hd+1)*h.headDim]
		for i := 0; i < half; i++ {
			c, sn := float32(s.cos[i]), float32(s.sin[i])
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

// grow makes room in a KV cache slice for position pos.
func grow(c []float32, need, limit int) []float32 {
	if need <= cap(c) {
		return c[:need]
	}
	n := max(need, 2*cap(c), 64)
	n = min(n, limit)
	nc := make([]float32, need, n)
	copy(nc, c)
	return nc
}

// forward runs one token at position s.pos and advances it. When
// wantLogits, s.logits holds the next-token logits afterwards.
func (m *Model) forward(s *seqState, tok int, wantLogits bool) {
	h, w, th := m.h, m.w, m.threads
	kvDim := h.nHeadKV * h.headDim
	pos := s.pos
	w.tokEmbd.row(tok, s.x)
	for i := range s.cos {
		theta := float64(pos) * m.freqs[i]
		s.sin[i], s.cos[i] = math.Sincos(theta)
	}
	group := h.nHead / h.nHeadKV
	scale := float32(1 / math.Sqrt(float64(h.headDim)))
	for li := range w.layers {
		l := &w.layers[li]
		rmsnorm(s.xb, s.x, l.attnNorm, h.eps)
		l.wq.mulVec(s.q, s.xb, th)
		l.wk.mulVec(s.k, s.xb, th)
		l.wv.mulVec(s.v, s.xb, th)
		if l.bq != nil {
			addTo(s.q, l.bq)
			addTo(s.k, l.bk)
			addTo(s.v, l.bv)
		}
		m.rope(s, s.q, h.nHead)
		m.rope(s, s.k, h.nHeadKV)
		limit := h.nCtx * kvDim
		s.kcache[li] = grow(s.kcache[li], (pos+1)*kvDim, limit)
		s.vcache[li] = grow(s.vcache[li], (pos+1)*kvDim, limit)
		kc, vc := s.kcache[li], s.vcache[li]
		copy(kc[pos*kvDim:], s.k)
		copy(vc[pos*kvDim:], s.v)

		for hd := 0; hd < h.nHead; hd++ {
			q := s.q[hd*h.headDim : (hd+1)*h.headDim]
			kvOff := (hd / group) * h.headDim
			att := s.att[:pos+1]
			maxv := float32(math.Inf(-1))
			for t := 0; t <= pos; t++ {
				k := kc[t*kvDim+kvOff : t*kvDim+kvOff+h.headDim]
				a := dot(q, k) * scale
				att[t] = a
				maxv = max(maxv, a)
			}
			var sum float32
			for t := range att {
				e := float32(math.Exp(float64(att[t] - maxv)))
				att[t] = e
				sum += e
			}
			out := s.xb[hd*h.headDim : (hd+1)*h.headDim]
			clear(out)
			inv := 1 / sum
			for t, a := range att {
				v := vc[t*kvDim+kvOff : t*kvDim+kvOff+h.headDim]
				a *= inv
				for i := range out {
					out[i] += a * v[i]
				}
			}
		}
		l.wo.mulVec(s.xb2, s.xb, th)
		addTo(s.x, s.xb2)

		rmsnorm(s.xb, s.x, l.ffnNorm, h.eps)
		l.gate.mulVec(s.hb, s.xb, th)
		l.up.mulVec(s.hb2, s.xb, th)
		for i, g := range s.hb {
			s.hb[i] = g / (1 + float32(math.Exp(float64(-g)))) * s.hb2[i]
		}
		l.down.mulVec(s.xb, s.hb, th)
		addTo(s.x, s.xb)
	}
	s.pos++
	if !wantLogits {
		return
	}
	rmsnorm(s.xb, s.x, w.outNorm, h.eps)
	w.output.mulVec(s.logits, s.xb, th)
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
