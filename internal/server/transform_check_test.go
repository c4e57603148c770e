package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/inferbox/inferbox/internal/catalog"
)

// variedRows returns n rows made from the sample rows with every feature
// scaled by a factor that depends on the row, so predictions differ from
// row to row (and cover more of the trees than five rows do).
func (e *batchEnv) variedRows(n int) []string {
	out := make([]string, n)
	for i := range out {
		cols := strings.Split(e.rows[i%len(e.rows)], ",")
		for c, v := range cols {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue // an empty field is a missing value: keep it
			}
			scale := 0.8 + 0.4*float64((i*7+c*3)%41)/40
			cols[c] = strconv.FormatFloat(f*scale, 'g', 7, 64)
		}
		out[i] = strings.Join(cols, ",")
	}
	return out
}

// pythonPredictions scores rows with python3-xgboost's Booster.predict on
// the example model, the reference inferbox's runtime must match.
func pythonPredictions(t *testing.T, rows []string) []float64 {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import xgboost, numpy").Run(); err != nil {
		t.Fatalf("%s has no xgboost/numpy (scripts/test.sh installs python3-xgboost): %v", py, err)
	}
	csv := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(csv, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, numpy, xgboost
b = xgboost.Booster(model_file=sys.argv[1])
x = numpy.genfromtxt(sys.argv[2], delimiter=",", dtype=numpy.float32, ndmin=2)
for p in b.predict(xgboost.DMatrix(x, missing=numpy.nan)):
    print(repr(float(p)))
`
	out, err := exec.Command(py, "-c", script, repoPath(t, "examples/xgboost/model/xgboost-model"), csv).CombinedOutput()
	if err != nil {
		t.Fatalf("python3-xgboost: %v\n%s", err, out)
	}
	var preds []float64
	for _, f := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("python3-xgboost printed %q", f)
		}
		preds = append(preds, v)
	}
	if len(preds) != len(rows) {
		t.Fatalf("python3-xgboost gave %d predictions for %d rows", len(preds), len(rows))
	}
	return preds
}

// compareLines checks an output object line by line against reference
// predictions within relTol (relative, with an absolute floor of relTol
// for values near zero). It returns the first problems found.
func compareLines(got string, want []float64, relTol float64) []string {
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	var bad []string
	if len(lines) != len(want) {
		return []string{fmt.Sprintf("%d output lines for %d rows", len(lines), len(want))}
	}
	for i, l := range lines {
		v, err := strconv.ParseFloat(strings.TrimSpace(l), 64)
		if err != nil || math.Abs(v-want[i]) > relTol*math.Max(math.Abs(want[i]), 1) {
			bad = append(bad, fmt.Sprintf("line %d: %q, python3-xgboost %v", i+1, l, want[i]))
			if len(bad) == 5 {
				break
			}
		}
	}
	return bad
}

// describeProgress calls DescribeTransformJob on the AWS JSON wire, signed
// as the SDKs sign it, and returns inferbox's Progress member (the SDKs
// drop members their model lacks).
func describeProgress(t *testing.T, e *batchEnv, name string) catalog.TransformProgress {
	t.Helper()
	body := []byte(`{"TransformJobName":"` + name + `"}`)
	req, err := http.NewRequest(http.MethodPost, e.c.url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "SageMaker.DescribeTransformJob")
	sum := sha256.Sum256(body)
	creds, err := e.c.cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sagemaker", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		TransformJobStatus string
		Progress           *catalog.TransformProgress
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Progress == nil {
		t.Fatalf("DescribeTransformJob %s: %s %s: no Progress", name, resp.Status, b)
	}
	return *out.Progress
}
