package process

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/inferbox/inferbox/internal/runtime"
)

// BenchmarkInvokeExample measures one CSV record through the process runtime
// and examples/byo-python (loopback HTTP plus Python's ThreadingHTTPServer).
func BenchmarkInvokeExample(b *testing.B) {
	if _, err := os.Stat(python); err != nil {
		b.Skip(err)
	}
	example, _ := filepath.Abs("../../../examples/byo-python")
	sample, err := os.ReadFile(filepath.Join(example, "sample.csv"))
	if err != nil {
		b.Fatal(err)
	}
	row := sample[:bytes.IndexByte(sample, '\n')+1]
	m, err := (&Loader{BaseDir: b.TempDir()}).Start(context.Background(), runtime.Spec{
		Command: []string{filepath.Join(example, "serve.py")}, ModelDir: filepath.Join(example, "model")})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		resp, err := m.Invoke(ctx, &runtime.Request{ContentType: "text/csv", Accept: "text/csv",
			Body: bytes.NewReader(row), Size: int64(len(row))})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}
