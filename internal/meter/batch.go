package meter

import (
	"encoding/binary"
	"errors"
	"time"
)

// Invocations are written in batches: one row of meter_invocation_batches
// per flush, holding every invocation of the flush in a compact binary
// encoding. Each invocation is still recorded on its own (Invocations
// decodes them); what the batch saves is SQLite's per-row cost, which at
// tens of thousands of requests per second was a fifth of the server's
// CPU.
//
// Encoding (all integers are varints): version (1), a string table (count,
// then each string's length and bytes), then the invocation count and per
// invocation: time (µs, delta from the previous), mode, resource, variant,
// instance type and caller (indices into the string table), model and
// total latency (µs), status, bytes in, bytes out, input tokens, output
// tokens, memory MB.

const batchVersion = 1

var errBadBatch = errors.New("meter: malformed invocation batch")

func encodeBatch(invs []Invocation) (data []byte, minUs, maxUs int64) {
	index := map[string]uint64{}
	var table []string
	ref := func(s string) uint64 {
		i, ok := index[s]
		if !ok {
			i = uint64(len(table))
			index[s] = i
			table = append(table, s)
		}
		return i
	}
	body := make([]byte, 0, len(invs)*24)
	body = binary.AppendUvarint(body, uint64(len(invs)))
	var prev int64
	minUs, maxUs = int64(1<<63-1), int64(-1<<63)
	for i := range invs {
		v := &invs[i]
		t := v.Time.UnixMicro()
		minUs, maxUs = min(minUs, t), max(maxUs, t)
		body = binary.AppendVarint(body, t-prev)
		prev = t
		for _, s := range []string{v.Mode, v.Resource, v.Variant, v.InstanceType, v.Caller} {
			body = binary.AppendUvarint(body, ref(s))
		}
		for _, n := range []int64{v.ModelLatency.Microseconds(), v.TotalLatency.Microseconds(), int64(v.Status),
			v.BytesIn, v.BytesOut, int64(v.InputTokens), int64(v.OutputTokens), int64(v.MemoryMB)} {
			body = binary.AppendVarint(body, n)
		}
	}
	data = binary.AppendUvarint(nil, batchVersion)
	data = binary.AppendUvarint(data, uint64(len(table)))
	for _, s := range table {
		data = binary.AppendUvarint(data, uint64(len(s)))
		data = append(data, s...)
	}
	return append(data, body...), minUs, maxUs
}

type batchReader struct {
	b   []byte
	err error
}

func (r *batchReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadBatch, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *batchReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errBadBatch, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// decodeBatch appends the invocations of data with from <= Time < to.
func decodeBatch(out []Invocation, data []byte, from, to int64) ([]Invocation, error) {
	r := &batchReader{b: data}
	if r.uvarint() != batchVersion {
		return out, errBadBatch
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return out, errBadBatch
	}
	table := make([]string, 0, n)
	for range n {
		l := r.uvarint()
		if l > uint64(len(r.b)) {
			return out, errBadBatch
		}
		table = append(table, string(r.b[:l]))
		r.b = r.b[l:]
	}
	str := func() string {
		i := r.uvarint()
		if i >= uint64(len(table)) {
			r.err = errBadBatch
			return ""
		}
		return table[i]
	}
	count := r.uvarint()
	var t int64
	for range count {
		if r.err != nil {
			break
		}
		t += r.varint()
		v := Invocation{Time: fromMicro(t)}
		v.Mode, v.Resource, v.Variant, v.InstanceType, v.Caller = str(), str(), str(), str(), str()
		v.ModelLatency = time.Duration(r.varint()) * time.Microsecond
		v.TotalLatency = time.Duration(r.varint()) * time.Microsecond
		v.Status = int(r.varint())
		v.BytesIn, v.BytesOut = r.varint(), r.varint()
		v.InputTokens, v.OutputTokens, v.MemoryMB = int(r.varint()), int(r.varint()), int(r.varint())
		if t >= from && t < to {
			out = append(out, v)
		}
	}
	return out, r.err
}
