package meter

import (
	"testing"
	"time"
)

func TestBatchRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	in := []Invocation{
		{Time: t0, Mode: "realtime", Resource: "ep", Variant: "A", InstanceType: "ml.m5.large", Caller: "AKID",
			ModelLatency: 1500 * time.Microsecond, TotalLatency: 2 * time.Millisecond, Status: 200, BytesIn: 100, BytesOut: 7},
		{Time: t0.Add(-3 * time.Millisecond), Mode: "serverless", Resource: "sl", Variant: "AllTraffic", Status: 424, MemoryMB: 2048},
		{Time: t0.Add(time.Second), Mode: "realtime", Resource: "ep", Variant: "A", InstanceType: "ml.m5.large", Caller: "AKID",
			InputTokens: 12, OutputTokens: 40, BytesIn: -1},
	}
	data, lo, hi := encodeBatch(in)
	if lo != in[1].Time.UnixMicro() || hi != in[2].Time.UnixMicro() {
		t.Fatalf("bounds %d..%d", lo, hi)
	}
	out, err := decodeBatch(nil, data, lo, hi+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d invocations back, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("invocation %d = %+v\nwant %+v", i, out[i], in[i])
		}
	}
	// The window filters.
	out, _ = decodeBatch(nil, data, t0.UnixMicro(), t0.Add(time.Millisecond).UnixMicro())
	if len(out) != 1 || out[0] != in[0] {
		t.Fatalf("window: %+v", out)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	data, _, _ := encodeBatch([]Invocation{{Time: time.Unix(1, 0), Mode: "m", Status: 200}})
	f.Add(data)
	f.Add([]byte{1, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeBatch(nil, b, -1<<62, 1<<62) // must not panic or allocate without bound
	})
}
