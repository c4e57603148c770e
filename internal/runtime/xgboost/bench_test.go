package xgboost

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/inferbox/inferbox/internal/runtime"
)

// benchDir returns a directory with the benchmark's model.json and rows.csv:
// $XGBOOST_BENCH_DIR when bench/xgboost/run.sh set it (so Go and Python score
// the same model and rows), otherwise made now by bench/xgboost/make_model.py.
func benchDir(b *testing.B) string {
	if dir := os.Getenv("XGBOOST_BENCH_DIR"); dir != "" {
		return dir
	}
	requirePythonXGBoost(b)
	dir := b.TempDir()
	runPython(b, filepath.Join("..", "..", "..", "bench", "xgboost", "make_model.py"), dir)
	return dir
}

func loadBench(b *testing.B) (*Model, []byte, []float32) {
	dir := benchDir(b)
	m, err := Load(filepath.Join(dir, "model.json"))
	if err != nil {
		b.Fatal(err)
	}
	csv, err := os.ReadFile(filepath.Join(dir, "rows.csv"))
	if err != nil {
		b.Fatal(err)
	}
	data, err := newCSVReader(bytes.NewReader(csv), m.NumFeatures(), -1).read(nil, 1<<30)
	if err != io.EOF {
		b.Fatalf("reading rows.csv: %v", err)
	}
	return m, csv, data
}

// BenchmarkPredict scores 10,000 parsed rows with one goroutine, as
// python3-xgboost's Booster.predict(DMatrix) does with nthread=1.
func BenchmarkPredict(b *testing.B) {
	m, _, data := loadBench(b)
	n := len(data) / m.NumFeatures()
	out := make([]float32, n)
	b.ResetTimer()
	for b.Loop() {
		m.PredictDense(data, out)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkInvokeCSV is the whole request path: CSV parsing, scoring and
// CSV output for 10,000 rows.
func BenchmarkInvokeCSV(b *testing.B) {
	m, csv, data := loadBench(b)
	n := len(data) / m.NumFeatures()
	b.SetBytes(int64(len(csv)))
	b.ResetTimer()
	for b.Loop() {
		resp, err := m.Invoke(context.Background(), &runtime.Request{ContentType: "text/csv", Body: bytes.NewReader(csv)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
