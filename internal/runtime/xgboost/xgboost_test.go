package xgboost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/runtime"
)

// tinyModel is a hand-written two-feature binary:logistic model. Tree 0's
// nodes are not in breadth-first order, to exercise renumbering:
//
//	node 0: x0 < 0.5 (missing left)  -> node 2 (leaf 0.1) | node 1
//	node 1: x1 < 1.5 (missing right) -> node 3 (leaf -0.2) | node 4 (leaf 0.3)
//
// Tree 1 is a single leaf, 0.05.
const tinyModel = `{"learner":{"attributes":{},"feature_names":[],"feature_types":[],
 "gradient_booster":{"name":"gbtree","model":{
  "gbtree_model_param":{"num_parallel_tree":"1","num_trees":"2","size_leaf_vector":"0"},
  "tree_info":[0,0],
  "trees":[
   {"id":0,"tree_param":{"num_deleted":"0","num_feature":"2","num_nodes":"5","size_leaf_vector":"0"},
    "left_children":[2,3,-1,-1,-1],"right_children":[1,4,-1,-1,-1],
    "parents":[2147483647,0,0,1,1],"split_indices":[0,1,0,0,0],
    "split_conditions":[0.5,1.5,0.1,-0.2,0.3],"split_type":[0,0,0,0,0],
    "default_left":[1,0,0,0,0],"base_weights":[0,0,0,0,0],"loss_changes":[0,0,0,0,0],
    "sum_hessian":[0,0,0,0,0],"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[]},
   {"id":1,"tree_param":{"num_deleted":"0","num_feature":"2","num_nodes":"1","size_leaf_vector":"0"},
    "left_children":[-1],"right_children":[-1],"parents":[2147483647],"split_indices":[0],
    "split_conditions":[0.05],"split_type":[0],"default_left":[false],"base_weights":[0],
    "loss_changes":[0],"sum_hessian":[0],"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[]}
  ]}},
 "learner_model_param":{"base_score":"5E-1","boost_from_average":"1","num_class":"0","num_feature":"2","num_target":"1"},
 "objective":{"name":"binary:logistic","reg_loss_param":{"scale_pos_weight":"1"}}},
 "version":[1,7,4]}`

// tinyWant is the score of tinyModel for a row, worked out by hand.
func tinyWant(margin float32) string {
	return fmt.Sprint(float32(1 / (1 + math.Exp(-float64(margin)))))
}

func writeModel(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadTiny(t *testing.T) *Model {
	t.Helper()
	m, err := Load(writeModel(t, t.TempDir(), "model.json", tinyModel))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func invoke(t *testing.T, m *Model, ct, accept, body string) (string, string, error) {
	t.Helper()
	resp, err := m.Invoke(context.Background(), &runtime.Request{ContentType: ct, Accept: accept, Body: strings.NewReader(body)})
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.ContentType, err
}

func TestTinyModelScores(t *testing.T) {
	m := loadTiny(t)
	want := strings.Join([]string{
		tinyWant(0.1 + 0.05),  // 0,0: left
		tinyWant(-0.2 + 0.05), // 1,1: right, left
		tinyWant(0.3 + 0.05),  // 1,2: right, right
		tinyWant(0.1 + 0.05),  // missing x0 goes left
		tinyWant(0.3 + 0.05),  // missing x1 goes right
		tinyWant(0.3 + 0.05),  // 0.5,1.5: equal to the threshold goes right
	}, "\n") + "\n"
	body := "0,0\n1,1\n1,2\n,2\n1,\n0.5,1.5\n"
	for _, tc := range []struct{ name, ct, body string }{
		{"csv", "text/csv", body},
		{"csv charset CRLF no final newline", "text/csv; charset=utf-8", strings.TrimSuffix(strings.ReplaceAll(body, "\n", "\r\n"), "\r\n")},
		{"csv with byte-order mark", "text/csv", "\ufeff" + body},
		{"csv NaN text and spaces", "text/csv", "0,0\n1, 1\n1,2\nNaN,2\n1,nan\n0.5,1.5\n\n"},
		{"libsvm with labels", "text/libsvm", "1 0:0 1:0\n0 0:1 1:1\n0 0:1 1:2\n1 1:2\n0 0:1\n0 0:0.5 1:1.5\n"},
		{"libsvm without labels", "text/x-libsvm", "0:0 1:0\n0:1 1:1\n0:1 1:2\n1:2\n0:1\n0:0.5 1:1.5\n"},
		{"json instances features", "application/json", `{"instances":[{"features":[0,0]},{"features":[1,1]},{"features":[1,2]},{"features":[null,2]},{"features":[1,null]},{"features":[0.5,1.5]}]}`},
		{"json instances lists", "application/json", `{"instances":[[0,0],[1,1],[1,2],[null,2],[1,null],[0.5,1.5]]}`},
		{"json bare list", "application/json", `[[0,0],[1,1],[1,2],[null,2],[1,null],[0.5,1.5]]`},
		{"jsonlines", "application/jsonlines", "[0,0]\n[1,1]\n{\"features\":[1,2]}\n[null,2]\n[1,null]\n[0.5,1.5]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ct, err := invoke(t, m, tc.ct, "", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if ct != "text/csv" || got != want {
				t.Errorf("got %s %q, want text/csv %q", ct, got, want)
			}
		})
	}
	t.Run("json single row", func(t *testing.T) {
		got, _, err := invoke(t, m, "application/json", "", `[1,2]`)
		if err != nil || got != tinyWant(0.35)+"\n" {
			t.Errorf("got %q, %v; want %q", got, err, tinyWant(0.35)+"\n")
		}
	})
	t.Run("Predict", func(t *testing.T) {
		nan := float32(math.NaN())
		out := make([]float32, 3)
		m.Predict([][]float32{{0, 0}, {nan, nan}, {1, 2}}, out)
		// Both missing: left at node 0.
		if got := fmt.Sprint(out); got != fmt.Sprintf("[%s %s %s]", tinyWant(0.15), tinyWant(0.15), tinyWant(0.35)) {
			t.Errorf("Predict = %s", got)
		}
	})
}

func TestOutputFormats(t *testing.T) {
	m := loadTiny(t)
	a, b := tinyWant(0.15), tinyWant(0.35)
	for _, tc := range []struct{ accept, wantCT, want string }{
		{"", "text/csv", a + "\n" + b + "\n"},
		{"*/*", "text/csv", a + "\n" + b + "\n"},
		{"application/json", "application/json", `{"predictions":[{"score":` + a + `},{"score":` + b + `}]}`},
		{"text/html, application/json;q=0.9", "application/json", `{"predictions":[{"score":` + a + `},{"score":` + b + `}]}`},
		{"application/jsonlines", "application/jsonlines", `{"score":` + a + "}\n" + `{"score":` + b + "}\n"},
	} {
		got, ct, err := invoke(t, m, "text/csv", tc.accept, "0,0\n1,2\n")
		if err != nil {
			t.Fatal(err)
		}
		if ct != tc.wantCT || got != tc.want {
			t.Errorf("Accept %q: got %s %q, want %s %q", tc.accept, ct, got, tc.wantCT, tc.want)
		}
	}
}

func TestSoftprobOutput(t *testing.T) {
	// Three classes, one leaf tree each; class 2 has the largest margin.
	model := strings.NewReplacer(`"num_class":"0"`, `"num_class":"3"`, `"binary:logistic"`, `"multi:softprob"`,
		`"tree_info":[0,0]`, `"tree_info":[1,2]`).Replace(tinyModel)
	m, err := Load(writeModel(t, t.TempDir(), "m.json", model))
	if err != nil {
		t.Fatal(err)
	}
	if m.NumOutputs() != 3 {
		t.Fatalf("NumOutputs = %d, want 3", m.NumOutputs())
	}
	got, _, err := invoke(t, m, "text/csv", "application/json", "0,0\n")
	if err != nil {
		t.Fatal(err)
	}
	// Margins: class 0 = 0.5 (base), class 1 = 0.5+0.1, class 2 = 0.5+0.05.
	out := make([]float32, 3)
	softmax([]float32{0.5, 0.6, 0.55}, out)
	want := fmt.Sprintf(`{"predictions":[{"score":[%v,%v,%v]}]}`, out[0], out[1], out[2])
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	got, _, err = invoke(t, m, "text/csv", "text/csv", "0,0\n0,0\n")
	if err != nil {
		t.Fatal(err)
	}
	if line := fmt.Sprintf("%v,%v,%v\n", out[0], out[1], out[2]); got != line+line {
		t.Errorf("csv: got %q, want %q", got, line+line)
	}
}

func TestBadInputNamesRow(t *testing.T) {
	m := loadTiny(t)
	for _, tc := range []struct{ name, ct, body, want string }{
		{"csv not a number", "text/csv", "1,2\n3,4\n5,abc\n", `row 3: field 2: "abc" is not a number`},
		{"csv too many fields", "text/csv", "1,2\n1,2,3\n", "row 2: 3 fields, model has 2 features"},
		{"csv too few fields", "text/csv", "1\n", "row 1: 1 fields, model has 2 features"},
		{"csv header", "text/csv", "a,b\n1,2\n", `row 1: field 1: "a" is not a number`},
		{"empty body", "text/csv", "", "no records"},
		{"libsvm index out of range", "text/libsvm", "0 0:1\n0 5:1\n", "row 2: token 2: feature index 5 out of range"},
		{"libsvm bad value", "text/libsvm", "0 0:x\n", `row 1: token 2: "x" is not a number`},
		{"libsvm bad token", "text/libsvm", "0 0:1 junk\n", `row 1: token 3: "junk" is not index:value`},
		{"json malformed", "application/json", `{"instances":[[1,2],[1,`, "row 2: malformed JSON"},
		{"json wrong length", "application/json", `{"instances":[[1,2],[1,2],[1]]}`, "row 3: 1 features, model has 2"},
		{"json string value", "application/json", `[[1,2],[1,"abc"]]`, `row 2: feature 2: "abc" is not a number`},
		{"json no instances", "application/json", `{"rows":[[1,2]]}`, `no "instances"`},
		{"json not a document", "application/json", `hello`, "malformed JSON"},
		{"json trailing garbage", "application/json", `[[1,2]] [[1,2]]`, "after the rows"},
		{"jsonlines bad row", "application/jsonlines", "[1,2]\n\n{\"features\":[1,2,3]}\n", "row 3: 3 features, model has 2"},
		{"jsonlines not json", "application/jsonlines", "[1,2]\n[1,2\n", "row 2: malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := invoke(t, m, tc.ct, "", tc.body)
			var me *runtime.ModelError
			if !errors.As(err, &me) || me.StatusCode != 400 {
				t.Fatalf("err = %v, want a 400 ModelError", err)
			}
			if !strings.Contains(me.Message, tc.want) {
				t.Errorf("message %q does not contain %q", me.Message, tc.want)
			}
		})
	}
}

func TestContentTypes(t *testing.T) {
	m := loadTiny(t)
	_, _, err := invoke(t, m, "application/x-recordio-protobuf", "", "x")
	var me *runtime.ModelError
	if !errors.As(err, &me) || me.StatusCode != 415 || !strings.Contains(me.Message, "application/x-recordio-protobuf") {
		t.Errorf("unknown content type: err = %v, want 415 naming it", err)
	}
	_, _, err = invoke(t, m, "text/csv", "image/png", "1,2\n")
	if !errors.As(err, &me) || me.StatusCode != 406 || !strings.Contains(me.Message, "image/png") {
		t.Errorf("unknown accept: err = %v, want 406 naming it", err)
	}
	if got, _, err := invoke(t, m, "", "", "1,2\n"); err != nil || got != tinyWant(0.35)+"\n" {
		t.Errorf("no content type: got %q, %v; want CSV to be assumed", got, err)
	}
}

func TestRefusedModels(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text  string
		want        string
		unsupported bool
	}{
		{"objective", strings.Replace(tinyModel, `"binary:logistic"`, `"rank:pairwise"`, 1), `objective "rank:pairwise"`, true},
		{"gblinear", strings.Replace(tinyModel, `"name":"gbtree"`, `"name":"gblinear"`, 1), `booster "gblinear"`, true},
		{"categorical", strings.Replace(tinyModel, `"split_type":[0,0,0,0,0]`, `"split_type":[1,0,0,0,0]`, 1), "categorical splits", true},
		{"multi-target", strings.Replace(tinyModel, `"num_target":"1"`, `"num_target":"2"`, 1), "num_target 2", true},
		{"legacy binary", "binf\x00\x00\x00?\x02\x00\x00\x00", "legacy binary XGBoost model", true},
		{"ubjson", "{L\x00\x00\x00\x00\x00\x00\x00\x07learner{", "UBJSON", true},
		{"pickle", "\x80\x04\x95", "not a JSON model", true},
		{"corrupt json", tinyModel[:200], "corrupt JSON model", false},
		{"not a model", `{"hello":1}`, `no "learner"`, false},
		{"child out of range", strings.Replace(tinyModel, `"left_children":[2,3,-1,-1,-1]`, `"left_children":[2,9,-1,-1,-1]`, 1), "tree 0: node 1: child 9 out of range", false},
		{"cycle", strings.Replace(tinyModel, `"left_children":[2,3,-1,-1,-1]`, `"left_children":[2,1,-1,-1,-1]`, 1), "reached twice", false},
		{"feature out of range", strings.Replace(tinyModel, `"split_indices":[0,1,0,0,0]`, `"split_indices":[0,7,0,0,0]`, 1), "split_indices 7", false},
		{"default_left junk", strings.Replace(tinyModel, `"default_left":[1,0,0,0,0]`, `"default_left":[1,2,0,0,0]`, 1), "default_left", false},
		{"tree_info class", strings.Replace(tinyModel, `"tree_info":[0,0]`, `"tree_info":[0,3]`, 1), "tree_info[1] = 3", false},
		{"base_score", strings.Replace(tinyModel, `"base_score":"5E-1"`, `"base_score":"1.5"`, 1), "0 < base_score < 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeModel(t, dir, tc.name+".json", tc.text)
			_, err := Load(p)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "xgboost: "+p+": ") {
				t.Errorf("error %q: want it to name the file and contain %q", err, tc.want)
			}
			if errors.Is(err, runtime.ErrUnsupported) != tc.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v", !tc.unsupported, tc.unsupported)
			}
		})
	}
}

func TestAcceptedVariants(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"bracketed base_score": strings.Replace(tinyModel, `"base_score":"5E-1"`, `"base_score":"[5E-1]"`, 1),
		"bool default_left":    strings.Replace(tinyModel, `"default_left":[1,0,0,0,0]`, `"default_left":[true,false,false,false,false]`, 1),
		"reg:linear alias":     strings.Replace(tinyModel, `"binary:logistic"`, `"reg:linear"`, 1),
	} {
		m, err := Load(writeModel(t, dir, "m.json", text))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		out := make([]float32, 1)
		m.Predict([][]float32{{1, 2}}, out)
		want, _ := m.objective.baseMargin(0.5)
		want += 0.35
		if m.objective.kind == transformSigmoid {
			want = float32(1 / (1 + math.Exp(-float64(want))))
		}
		if out[0] != want {
			t.Errorf("%s: score %v, want %v", name, out[0], want)
		}
	}
}

func TestLoaderFindsModel(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		files []string
		want  string // the file loaded, or an error substring after "!"
	}{
		{"sagemaker name", []string{"xgboost-model", "other.json"}, "xgboost-model"},
		{"model.json", []string{"model.json", "other.json"}, "model.json"},
		{"one json", []string{"churn.json", "README.txt"}, "churn.json"},
		{"two json", []string{"a.json", "b.json"}, "!2 *.json files (a.json, b.json)"},
		{"nothing", []string{"README.txt"}, "!no model file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				writeModel(t, dir, f, tinyModel)
			}
			m, err := NewLoader().Load(ctx, runtime.Spec{Kind: "xgboost", ModelDir: dir, Threads: 2})
			if want, isErr := strings.CutPrefix(tc.want, "!"); isErr {
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, dir, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := filepath.Base(m.(*Model).Path()); got != tc.want {
				t.Errorf("loaded %s, want %s", got, tc.want)
			}
		})
	}
	if _, err := NewLoader().Load(ctx, runtime.Spec{Kind: "xgboost"}); err == nil {
		t.Error("empty ModelDir: want an error")
	}
}

// TestThreadsAgree checks a batch split over goroutines scores like one.
func TestThreadsAgree(t *testing.T) {
	p := writeModel(t, t.TempDir(), "m.json", tinyModel)
	one, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	four, err := LoadWithOptions(p, Options{Threads: 4})
	if err != nil {
		t.Fatal(err)
	}
	n := 5000
	data := make([]float32, 2*n)
	for i := range data {
		data[i] = float32(i%7) / 3
		if i%11 == 0 {
			data[i] = float32(math.NaN())
		}
	}
	a, b := make([]float32, n), make([]float32, n)
	one.PredictDense(data, a)
	four.PredictDense(data, b)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d: %v with 1 thread, %v with 4", i, a[i], b[i])
		}
	}
}

// TestStreamsLargeInput sends more rows than Invoke reads up front: the rest
// is scored as the response is read, and a bad row there fails the read.
func TestStreamsLargeInput(t *testing.T) {
	m := loadTiny(t)
	const rows = 1_100_000
	body := bytes.Repeat([]byte("1,2\n"), rows)
	resp, err := m.Invoke(context.Background(), &runtime.Request{ContentType: "text/csv", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out, []byte("\n")); n != rows {
		t.Errorf("%d lines out, want %d", n, rows)
	}

	body = append(body, "1,x\n"...)
	resp, err = m.Invoke(context.Background(), &runtime.Request{ContentType: "text/csv", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("the bad row is past the eager part; Invoke should not see it: %v", err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	var me *runtime.ModelError
	if !errors.As(err, &me) || !strings.Contains(me.Message, fmt.Sprintf("row %d:", rows+1)) {
		t.Errorf("read error = %v, want a ModelError naming row %d", err, rows+1)
	}
}

// TestExampleModel loads the committed example (examples/xgboost) the way
// the server does and checks it scores sample.csv as XGBoost did.
func TestExampleModel(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "examples", "xgboost")
	m, err := NewLoader().Load(context.Background(), runtime.Spec{Kind: "xgboost", ModelDir: filepath.Join(dir, "model")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sample, err := os.ReadFile(filepath.Join(dir, "sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	got := invokeText(t, m.(*Model), &runtime.Request{ContentType: "text/csv", Body: bytes.NewReader(sample)})
	compareRows(t, "example", got, readFloatRows(t, filepath.Join(dir, "sample.expected")))
}
