// Package xgboost is a pure-Go (no cgo) predictor for gradient-boosted tree
// models saved by XGBoost >= 1.0 with save_model("....json"). It owns model
// loading (the JSON schema, objectives, base margins), the flattened tree
// arrays and batch prediction, and the SageMaker XGBoost container's wire
// formats: text/csv, text/libsvm, application/json and application/jsonlines
// in; text/csv, application/json and application/jsonlines out.
//
// It implements runtime.Model and runtime.Loader. It imports only the
// standard library and internal/runtime; it must not import pool, mode or
// adapter packages.
package xgboost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/inferbox/inferbox/internal/runtime"
)

// Model is a loaded XGBoost model. It is immutable after loading, so Invoke
// and Predict may be called concurrently.
type Model struct {
	path      string
	objective objective
	nFeature  int
	nGroup    int     // output groups (classes for multi:*, else 1)
	base      float32 // base margin, added to every group
	nodes     []node  // all trees, each tree's nodes contiguous, root first
	roots     []int32 // index of each tree's root in nodes
	groups    []int32 // output group of each tree
	threads   int     // goroutines Predict may use on big batches
	version   [3]int  // XGBoost version that saved the model
	booster   string  // gbtree or dart
	depths    []int32 // depth of each tree (steps from root to its deepest leaf)
}

// node is one tree node, 16 bytes. Children of an internal node are stored
// next to each other: the right child is left+1.
//
// Missing values are handled without a test at each node: predict expands a
// row of n features into 2n slots, slot 2f holding x[f] or -Inf when it is
// missing, and slot 2f+1 holding x[f] or +Inf. A node whose missing values
// go left reads slot 2f (-Inf < any threshold), one whose missing values go
// right reads slot 2f+1, and every node goes right iff slot >= threshold,
// which is XGBoost's "left iff x < threshold" for every present x.
//
// A leaf points to itself with a NaN threshold (never >=), so a walk that
// goes on past a leaf stays there: predict walks every tree a fixed number
// of steps, branch-free.
type node struct {
	value float32 // split threshold; NaN at a leaf
	slot  uint32  // 2*feature, +1 when missing values go right
	left  int32   // absolute index of the left child in Model.nodes; itself at a leaf
	leaf  float32 // leaf value (leaves only)
}

// Options tune a loaded model.
type Options struct {
	// Threads is how many goroutines Predict may use for one big batch.
	// 0 or 1 means the calling goroutine only.
	Threads int
}

// Load reads a model from path: a JSON model file, or a directory holding
// xgboost-model (the SageMaker container's name), model.json, or exactly one
// *.json file.
func Load(path string) (*Model, error) {
	return LoadWithOptions(path, Options{})
}

// LoadWithOptions is Load with options.
func LoadWithOptions(path string, opts Options) (*Model, error) {
	file, err := findModelFile(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("xgboost: %w", err)
	}
	m, err := parseModel(data)
	if err != nil {
		return nil, fmt.Errorf("xgboost: %s: %w", file, err)
	}
	m.path = file
	m.threads = max(opts.Threads, 1)
	return m, nil
}

// findModelFile resolves path to the model file.
func findModelFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("xgboost: model: %w", err)
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, name := range []string{"xgboost-model", "model.json"} {
		p := filepath.Join(path, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	matches, err := filepath.Glob(filepath.Join(path, "*.json"))
	if err != nil {
		return "", fmt.Errorf("xgboost: %s: %w", path, err)
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", fmt.Errorf("xgboost: %s: no model file: want xgboost-model, model.json or one *.json file", path)
	default:
		slices.Sort(matches)
		return "", fmt.Errorf("xgboost: %s: %d *.json files (%s): want exactly one, or name the model xgboost-model",
			path, len(matches), strings.Join(baseNames(matches), ", "))
	}
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// Path is the model file that was loaded.
func (m *Model) Path() string { return m.path }

// NumFeatures is the number of features a row must have.
func (m *Model) NumFeatures() int { return m.nFeature }

// NumOutputs is the number of values Predict writes per row: the number of
// classes for multi:softprob, 1 otherwise.
func (m *Model) NumOutputs() int {
	if m.objective.kind == transformSoftprob {
		return m.nGroup
	}
	return 1
}

// NumTrees is the number of trees in the model.
func (m *Model) NumTrees() int { return len(m.roots) }

// Objective is the model's objective name, e.g. "binary:logistic".
func (m *Model) Objective() string { return m.objective.name }

// Close releases the model. It is safe to call more than once.
func (m *Model) Close() error { return nil }

// The JSON document as XGBoost 1.x-3.x writes it. Numeric parameters are strings.
type jsonModel struct {
	Learner *struct {
		GradientBooster   json.RawMessage `json:"gradient_booster"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
	Version []int `json:"version"`
}

type jsonBooster struct {
	Name       string        `json:"name"`
	Model      *jsonGBTree   `json:"model"`       // gbtree
	GBTree     *jsonBooster  `json:"gbtree"`      // dart wraps a gbtree
	WeightDrop []json.Number `json:"weight_drop"` // dart
}

type jsonGBTree struct {
	Param struct {
		NumTrees        string `json:"num_trees"`
		NumParallelTree string `json:"num_parallel_tree"`
	} `json:"gbtree_model_param"`
	TreeInfo []int      `json:"tree_info"`
	Trees    []jsonTree `json:"trees"`
}

type jsonTree struct {
	Param struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
	Left            []int64       `json:"left_children"`
	Right           []int64       `json:"right_children"`
	SplitIndices    []int64       `json:"split_indices"`
	SplitConditions []json.Number `json:"split_conditions"`
	SplitType       []int         `json:"split_type"`
	DefaultLeft     []flexBool    `json:"default_left"`
	Categories      []int64       `json:"categories"`
}

// flexBool accepts 0/1 (XGBoost 1.x) and true/false (some 2.x writers).
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "0", "false":
		*b = false
	case "1", "true":
		*b = true
	default:
		return fmt.Errorf("default_left: %s is not 0, 1, true or false", p)
	}
	return nil
}

// parseModel decodes and validates a JSON model document.
func parseModel(data []byte) (*Model, error) {
	if err := sniffFormat(data); err != nil {
		return nil, err
	}
	var doc jsonModel
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("corrupt JSON model: %w", err)
	}
	if doc.Learner == nil {
		return nil, errors.New(`not an XGBoost model: no "learner" object`)
	}
	m := &Model{}
	copy(m.version[:], doc.Version)
	if len(doc.Version) > 0 && doc.Version[0] < 1 {
		return nil, fmt.Errorf("XGBoost version %v: %w (JSON models come from XGBoost >= 1.0)", doc.Version, runtime.ErrUnsupported)
	}
	lp := doc.Learner.LearnerModelParam
	obj, ok := objectiveByName(doc.Learner.Objective.Name)
	if !ok {
		return nil, fmt.Errorf("objective %q: %w (supported: %s)", doc.Learner.Objective.Name, runtime.ErrUnsupported, supportedObjectives)
	}
	m.objective = obj

	nFeature, err := intParam("num_feature", lp.NumFeature, 0)
	if err != nil {
		return nil, err
	}
	if nFeature <= 0 || nFeature > 1<<24 {
		return nil, fmt.Errorf("learner_model_param.num_feature %q: want 1 to %d", lp.NumFeature, 1<<24)
	}
	m.nFeature = nFeature
	nClass, err := intParam("num_class", lp.NumClass, 0)
	if err != nil {
		return nil, err
	}
	if nClass < 0 || nClass > 1<<16 {
		return nil, fmt.Errorf("learner_model_param.num_class %q out of range", lp.NumClass)
	}
	nTarget, err := intParam("num_target", lp.NumTarget, 1)
	if err != nil {
		return nil, err
	}
	if nTarget > 1 {
		return nil, fmt.Errorf("num_target %d (multi-output model): %w", nTarget, runtime.ErrUnsupported)
	}
	m.nGroup = max(nClass, 1)
	if obj.multiclass != (nClass > 1) {
		if obj.multiclass {
			return nil, fmt.Errorf("objective %s with num_class %q: want num_class >= 2", obj.name, lp.NumClass)
		}
		return nil, fmt.Errorf("objective %s with num_class %q: %w (multi-class only for multi:*)", obj.name, lp.NumClass, runtime.ErrUnsupported)
	}
	baseScore, err := parseBaseScore(lp.BaseScore)
	if err != nil {
		return nil, err
	}
	m.base, err = obj.baseMargin(baseScore)
	if err != nil {
		return nil, err
	}

	if err := m.loadBooster(doc.Learner.GradientBooster); err != nil {
		return nil, err
	}
	return m, nil
}

// sniffFormat refuses the formats that are not JSON with a message saying what to do.
func sniffFormat(data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	const resave = `re-save it as JSON with booster.save_model("model.json") (XGBoost >= 1.0) and name the file xgboost-model or model.json`
	switch {
	case len(trimmed) == 0:
		return errors.New("empty model file")
	case bytes.HasPrefix(data, []byte("binf")):
		return fmt.Errorf("legacy binary XGBoost model: %w; %s", runtime.ErrUnsupported, resave)
	case trimmed[0] != '{':
		return fmt.Errorf("not a JSON model (legacy binary or pickled XGBoost model?): %w; %s", runtime.ErrUnsupported, resave)
	}
	// UBJSON also starts with '{', followed by a type marker instead of '"'.
	rest := bytes.TrimLeft(trimmed[1:], " \t\r\n")
	if len(rest) > 0 && rest[0] != '"' && rest[0] != '}' {
		return fmt.Errorf("UBJSON XGBoost model: %w; %s", runtime.ErrUnsupported, resave)
	}
	return nil
}

func intParam(name, s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("learner_model_param.%s %q is not an integer", name, s)
	}
	return v, nil
}

// parseBaseScore accepts "5E-1" (1.x) and "[5E-1]" (2.x/3.x vector form with
// one target).
func parseBaseScore(s string) (float32, error) {
	if s == "" {
		return 0.5, nil
	}
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		parts := strings.Split(strings.TrimSpace(t[1:len(t)-1]), ",")
		if len(parts) != 1 {
			return 0, fmt.Errorf("base_score %q: %w (one value per model only)", s, runtime.ErrUnsupported)
		}
		t = strings.TrimSpace(parts[0])
	}
	v, err := strconv.ParseFloat(t, 32)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("base_score %q is not a number", s)
	}
	return float32(v), nil
}

// loadBooster reads gbtree or dart trees into the flat node array.
func (m *Model) loadBooster(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New(`no "gradient_booster" in learner`)
	}
	var b jsonBooster
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("corrupt gradient_booster: %w", err)
	}
	var weights []float32
	switch b.Name {
	case "gbtree":
	case "dart":
		if b.GBTree == nil {
			return errors.New(`dart booster without "gbtree"`)
		}
		for i, w := range b.WeightDrop {
			v, err := strconv.ParseFloat(string(w), 32)
			if err != nil {
				return fmt.Errorf("dart weight_drop[%d] %q is not a number", i, w)
			}
			weights = append(weights, float32(v))
		}
		b = *b.GBTree
		if b.Name != "gbtree" {
			return fmt.Errorf("dart booster wraps %q, want gbtree", b.Name)
		}
	default:
		return fmt.Errorf("booster %q: %w (supported: gbtree, dart)", b.Name, runtime.ErrUnsupported)
	}
	m.booster = b.Name
	if weights != nil {
		m.booster = "dart"
	}
	if b.Model == nil {
		return errors.New(`gbtree booster without "model"`)
	}
	gb := b.Model
	if n, err := strconv.Atoi(gb.Param.NumTrees); gb.Param.NumTrees != "" && (err != nil || n != len(gb.Trees)) {
		return fmt.Errorf("gbtree_model_param.num_trees %q but %d trees", gb.Param.NumTrees, len(gb.Trees))
	}
	if len(gb.TreeInfo) != len(gb.Trees) {
		return fmt.Errorf("tree_info has %d entries for %d trees", len(gb.TreeInfo), len(gb.Trees))
	}
	if weights != nil && len(weights) != len(gb.Trees) {
		return fmt.Errorf("dart weight_drop has %d entries for %d trees", len(weights), len(gb.Trees))
	}
	total := 0
	for i := range gb.Trees {
		total += len(gb.Trees[i].Left)
	}
	if total > math.MaxInt32/2 {
		return fmt.Errorf("%d nodes: too many", total)
	}
	m.nodes = make([]node, 0, total)
	m.roots = make([]int32, len(gb.Trees))
	m.depths = make([]int32, len(gb.Trees))
	m.groups = make([]int32, len(gb.Trees))
	for t := range gb.Trees {
		g := gb.TreeInfo[t]
		if g < 0 || g >= m.nGroup {
			return fmt.Errorf("tree_info[%d] = %d: want 0 to %d", t, g, m.nGroup-1)
		}
		m.groups[t] = int32(g)
		m.roots[t] = int32(len(m.nodes))
		w := float32(1)
		if weights != nil {
			w = weights[t]
		}
		d, err := m.appendTree(&gb.Trees[t], w)
		if err != nil {
			return fmt.Errorf("tree %d: %w", t, err)
		}
		m.depths[t] = d
	}
	return nil
}

// appendTree validates one tree and appends its nodes, renumbered
// breadth-first so that siblings are adjacent. Leaf values are multiplied by
// weight (DART's weight_drop; 1 for gbtree). It returns the tree's depth.
func (m *Model) appendTree(t *jsonTree, weight float32) (int32, error) {
	n := len(t.Left)
	if n == 0 {
		return 0, errors.New("no nodes")
	}
	if s := t.Param.NumNodes; s != "" {
		if v, err := strconv.Atoi(s); err != nil || v != n {
			return 0, fmt.Errorf("tree_param.num_nodes %q but %d nodes", s, n)
		}
	}
	if s := t.Param.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return 0, fmt.Errorf("size_leaf_vector %s (vector leaves): %w", s, runtime.ErrUnsupported)
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"right_children", len(t.Right)}, {"split_indices", len(t.SplitIndices)},
		{"split_conditions", len(t.SplitConditions)}, {"default_left", len(t.DefaultLeft)}} {
		if c.n != n {
			return 0, fmt.Errorf("%s has %d entries, left_children %d", c.name, c.n, n)
		}
	}
	if len(t.SplitType) != 0 && len(t.SplitType) != n {
		return 0, fmt.Errorf("split_type has %d entries, left_children %d", len(t.SplitType), n)
	}
	for _, st := range t.SplitType {
		if st != 0 {
			return 0, fmt.Errorf("categorical splits: %w (re-train without enable_categorical or one-hot encode)", runtime.ErrUnsupported)
		}
	}
	if len(t.Categories) != 0 {
		return 0, fmt.Errorf("categorical splits: %w (re-train without enable_categorical or one-hot encode)", runtime.ErrUnsupported)
	}
	// Breadth-first renumbering: order[k] is the original id of new node k.
	base := int32(len(m.nodes))
	newID := make([]int32, n)
	for i := range newID {
		newID[i] = -1
	}
	order := make([]int32, 1, n)
	newID[0] = 0
	for k := 0; k < len(order); k++ {
		id := order[k]
		l, r := t.Left[id], t.Right[id]
		if l == -1 && r == -1 {
			continue
		}
		for _, c := range [2]int64{l, r} {
			if c <= 0 || c >= int64(n) {
				return 0, fmt.Errorf("node %d: child %d out of range", id, c)
			}
			if newID[c] != -1 {
				return 0, fmt.Errorf("node %d: child %d reached twice", id, c)
			}
			newID[c] = int32(len(order))
			order = append(order, int32(c))
		}
	}
	depth := make([]int32, len(order))
	maxDepth := int32(0)
	for k, id := range order {
		v, err := strconv.ParseFloat(string(t.SplitConditions[id]), 32)
		if err != nil {
			return 0, fmt.Errorf("node %d: split_conditions %q is not a number", id, t.SplitConditions[id])
		}
		nd := node{value: float32(v)}
		if t.Left[id] == -1 {
			nd.leaf = float32(v) * weight
			if math.IsNaN(float64(nd.leaf)) {
				return 0, fmt.Errorf("node %d: leaf value is NaN", id)
			}
			nd.value = float32(math.NaN())
			nd.left = base + int32(k)
		} else {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("node %d: split condition %v is not finite", id, v)
			}
			f := t.SplitIndices[id]
			if f < 0 || f >= int64(m.nFeature) {
				return 0, fmt.Errorf("node %d: split_indices %d: model has %d features", id, f, m.nFeature)
			}
			nd.slot = 2 * uint32(f)
			if !t.DefaultLeft[id] {
				nd.slot++
			}
			l := newID[t.Left[id]]
			if newID[t.Right[id]] != l+1 {
				return 0, fmt.Errorf("node %d: internal error renumbering children", id)
			}
			nd.left = base + l
			depth[l] = depth[k] + 1
			depth[l+1] = depth[k] + 1
			maxDepth = max(maxDepth, depth[k]+1)
		}
		m.nodes = append(m.nodes, nd)
	}
	return maxDepth, nil
}
