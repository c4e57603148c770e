package xgboost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/runtime"
)

const python = "/usr/bin/python3"

// requirePythonXGBoost fails the test (it does not skip) when Debian's
// python3-xgboost is missing: the project's test command installs it.
func requirePythonXGBoost(t testing.TB) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import xgboost, sklearn; print(xgboost.__version__)").CombinedOutput()
	if err != nil {
		t.Fatalf("python3-xgboost is required for this test and is missing (%v: %s); install it with: apt-get install -y python3-xgboost python3-sklearn xgboost", err, bytes.TrimSpace(out))
	}
}

// runPython runs a script with Debian's python3 and fails the test on error.
func runPython(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", python, strings.Join(args, " "), err, out)
	}
}

func TestParityWithPythonXGBoost(t *testing.T) {
	requirePythonXGBoost(t)
	dir := t.TempDir()
	runPython(t, filepath.Join("testdata", "make_parity.py"), dir)
	manifest, err := os.ReadFile(filepath.Join(dir, "cases.txt"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		name, objective, _ := strings.Cut(line, " ")
		seen[objective] = true
		t.Run(name, func(t *testing.T) {
			m, err := Load(filepath.Join(dir, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			// XGBoost 1.7 saves reg:linear under its new name.
			if m.Objective() != objective && !(objective == "reg:linear" && m.Objective() == "reg:squarederror") {
				t.Fatalf("objective %q, want %q", m.Objective(), objective)
			}
			csvBody, err := os.ReadFile(filepath.Join(dir, name+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			want := readFloatRows(t, filepath.Join(dir, name+".pred"))

			// CSV in, CSV out (the default Accept).
			got := invokeText(t, m, &runtime.Request{ContentType: "text/csv", Body: bytes.NewReader(csvBody)})
			compareRows(t, "csv", got, want)

			// The same rows as libsvm (missing values left out) and as JSON with nulls.
			rows := readFloatRows(t, filepath.Join(dir, name+".csv"))
			got = invokeText(t, m, &runtime.Request{ContentType: "text/libsvm", Body: strings.NewReader(toLibSVM(rows))})
			compareRows(t, "libsvm", got, want)
			got = invokeJSON(t, m, toJSONInstances(rows))
			compareRows(t, "json", got, want)
		})
	}
	for _, obj := range []string{"binary:logistic", "binary:logitraw", "reg:squarederror", "reg:linear",
		"reg:logistic", "multi:softprob", "multi:softmax"} {
		if !seen[obj] {
			t.Errorf("no parity case for %s", obj)
		}
	}
}

// invokeText calls Invoke and parses its CSV answer.
func invokeText(t *testing.T, m *Model, req *runtime.Request) [][]float64 {
	t.Helper()
	resp, err := m.Invoke(context.Background(), req)
	if err != nil {
		t.Fatalf("Invoke(%s): %v", req.ContentType, err)
	}
	defer resp.Body.Close()
	if resp.ContentType != "text/csv" {
		t.Errorf("response content type %q, want text/csv", resp.ContentType)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return parseFloatRows(t, body)
}

// invokeJSON sends application/json and accepts application/json.
func invokeJSON(t *testing.T, m *Model, body []byte) [][]float64 {
	t.Helper()
	resp, err := m.Invoke(context.Background(), &runtime.Request{
		ContentType: "application/json", Accept: "application/json", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("Invoke(json): %v", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Predictions []struct {
			Score json.RawMessage `json:"score"`
		} `json:"predictions"`
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("response is not JSON: %v\n%.300s", err, raw)
	}
	var out [][]float64
	for _, p := range doc.Predictions {
		var one float64
		if err := json.Unmarshal(p.Score, &one); err == nil {
			out = append(out, []float64{one})
			continue
		}
		var many []float64
		if err := json.Unmarshal(p.Score, &many); err != nil {
			t.Fatalf("score %s is neither a number nor a list", p.Score)
		}
		out = append(out, many)
	}
	return out
}

func compareRows(t *testing.T, what string, got, want [][]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: row %d: %d values, want %d", what, i+1, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if d := math.Abs(g - w); d > 1e-6*math.Abs(w) && d > 1e-7 {
				bad++
				if bad <= 5 {
					t.Errorf("%s: row %d value %d: got %.9g, xgboost %.9g", what, i+1, j+1, g, w)
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d values differ in all", what, bad)
	}
}

// readFloatRows reads comma-separated numbers; an empty field is NaN.
func readFloatRows(t *testing.T, path string) [][]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseFloatRows(t, b)
}

func parseFloatRows(t *testing.T, b []byte) [][]float64 {
	t.Helper()
	var rows [][]float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var row []float64
		for _, f := range strings.Split(sc.Text(), ",") {
			if f == "" {
				row = append(row, math.NaN())
				continue
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("%q: %v", f, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

func toLibSVM(rows [][]float64) string {
	var b strings.Builder
	for _, row := range rows {
		b.WriteString("0")
		for i, v := range row {
			if !math.IsNaN(v) {
				fmt.Fprintf(&b, " %d:%s", i, strconv.FormatFloat(v, 'g', -1, 32))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func toJSONInstances(rows [][]float64) []byte {
	var b bytes.Buffer
	b.WriteString(`{"instances":[`)
	for r, row := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"features":[`)
		for i, v := range row {
			if i > 0 {
				b.WriteByte(',')
			}
			if math.IsNaN(v) {
				b.WriteString("null")
			} else {
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 32))
			}
		}
		b.WriteString("]}")
	}
	b.WriteString("]}")
	return b.Bytes()
}
