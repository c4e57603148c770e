package transform

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func collect(t *testing.T, rr recordReader, o splitOptions) ([]*batch, error) {
	t.Helper()
	var out []*batch
	err := splitBatches(rr, o, func(b *batch) error { out = append(out, b); return nil })
	return out, err
}

func TestLineBatches(t *testing.T) {
	in := "a,1\nbb,2\r\n\nccc,3" // CRLF, an empty line, no final newline
	single, err := collect(t, newLineReader(strings.NewReader(in), 100), splitOptions{limit: 100})
	if err != nil || len(single) != 3 {
		t.Fatalf("SingleRecord: %d batches, %v", len(single), err)
	}
	if string(single[1].payload) != "bb,2\r\n" || single[2].first != 3 || string(single[2].payload) != "ccc,3\n" {
		t.Errorf("SingleRecord payloads %q %q first %d", single[1].payload, single[2].payload, single[2].first)
	}
	multi, err := collect(t, newLineReader(strings.NewReader(in), 11), splitOptions{multi: true, limit: 11, keepInputs: true})
	if err != nil {
		t.Fatal(err)
	}
	// "a,1\n"+"bb,2\r\n" = 10 bytes fit in 11; "ccc,3\n" starts a new batch.
	if len(multi) != 2 || multi[0].n != 2 || string(multi[0].payload) != "a,1\nbb,2\r\n" || string(multi[0].inputs[1]) != "bb,2" || multi[1].first != 3 {
		t.Errorf("MultiRecord batches: %+v", multi)
	}
}

func TestLineRecordTooLarge(t *testing.T) {
	in := "ok\n" + strings.Repeat("x", 200<<10) + "\nafter\n"
	_, err := collect(t, newLineReader(strings.NewReader(in), 1000), splitOptions{multi: true, limit: 1000})
	var re *recordError
	if !errors.As(err, &re) || re.record != 2 || !errors.Is(err, errRecordTooLarge) {
		t.Fatalf("err = %v, want record 2 too large", err)
	}
}

func TestLineStreamingLargeObject(t *testing.T) {
	// 50k lines through a reader that never holds more than one record.
	var b bytes.Buffer
	for range 50000 {
		b.WriteString("1,2,3\n")
	}
	n := 0
	err := splitBatches(newLineReader(&b, 64), splitOptions{multi: true, limit: 64}, func(bt *batch) error { n += bt.n; return nil })
	if err != nil || n != 50000 {
		t.Fatalf("records %d, err %v", n, err)
	}
}

func TestInputFilterInBatches(t *testing.T) {
	p, err := parsePath("$[1:]")
	if err != nil {
		t.Fatal(err)
	}
	bs, err := collect(t, newLineReader(strings.NewReader("id1,1,2\nid2,3,4\n"), 100), splitOptions{multi: true, limit: 100, filter: p, keepInputs: true})
	if err != nil || len(bs) != 1 || string(bs[0].payload) != "1,2\n3,4\n" {
		t.Fatalf("filtered payload %q, %v", bs[0].payload, err)
	}
}

func TestRecordIO(t *testing.T) {
	var in []byte
	in = appendRecordIO(in, []byte("abc"))   // padded to 4
	in = appendRecordIO(in, []byte("defgh")) // padded to 8
	// A record split in two frames (flags 1 and 3).
	in = append(in, frame(1, []byte("sp"))...)
	in = append(in, frame(3, []byte("lit"))...)
	bs, err := collect(t, newRecordIOReader(bytes.NewReader(in), 1<<20), splitOptions{limit: 1 << 20, recordIO: true})
	if err != nil || len(bs) != 3 {
		t.Fatalf("%d batches, %v", len(bs), err)
	}
	if string(bs[0].payload) != "abc" || string(bs[1].payload) != "defgh" || string(bs[2].payload) != "split" {
		t.Errorf("SingleRecord payloads %q %q %q", bs[0].payload, bs[1].payload, bs[2].payload)
	}
	multi, err := collect(t, newRecordIOReader(bytes.NewReader(in), 1<<20), splitOptions{multi: true, limit: 1 << 20, recordIO: true})
	if err != nil || len(multi) != 1 || !bytes.Equal(multi[0].payload, in) {
		t.Errorf("MultiRecord keeps framing: %q, %v", multi[0].payload, err)
	}
	bad := append([]byte(nil), in...)
	bad[0] ^= 0xff
	if _, err := collect(t, newRecordIOReader(bytes.NewReader(bad), 1<<20), splitOptions{limit: 1 << 20, recordIO: true}); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("bad magic: %v", err)
	}
	if _, err := collect(t, newRecordIOReader(bytes.NewReader(in[:len(in)-2]), 1<<20), splitOptions{limit: 1 << 20, recordIO: true}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: %v", err)
	}
}

func frame(flag uint32, data []byte) []byte {
	b := appendRecordIO(nil, data)
	b[7] |= byte(flag << 5)
	return b
}

func FuzzRecordIO(f *testing.F) {
	f.Add(appendRecordIO(appendRecordIO(nil, []byte("hello")), []byte("")))
	f.Add(append(frame(1, []byte("ab")), frame(3, []byte("c"))...))
	f.Add([]byte{0x0a, 0x23, 0xd7, 0xce, 0xff, 0xff, 0xff, 0x1f})
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := newRecordIOReader(bytes.NewReader(in), 1<<16)
		total := 0
		for {
			rec, err := rr.next()
			if err != nil {
				if err == io.EOF && total != len(in) {
					t.Fatalf("EOF after %d of %d bytes", total, len(in))
				}
				return
			}
			if len(rec.raw)%4 != 0 || len(rec.data) > len(rec.raw) {
				t.Fatalf("raw %d bytes, data %d", len(rec.raw), len(rec.data))
			}
			// Re-framing a whole record's data reads back the same data.
			again, err := newRecordIOReader(bytes.NewReader(appendRecordIO(nil, rec.data)), 1<<17).next()
			if err != nil || !bytes.Equal(again.data, rec.data) {
				t.Fatalf("round trip: %v", err)
			}
			total += len(rec.raw)
		}
	})
}
