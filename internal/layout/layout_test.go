// Package layout holds no code: its test keeps the repository's layout
// honest. Every package has a doc comment, and dependencies point downward
// (adapters → mode services → pool → runtime): the rules below are checked
// on every test run, so a wrong import fails CI rather than review.
package layout

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/inferbox/inferbox/"

type pkg struct {
	dir     string
	doc     bool
	imports map[string]bool
}

func loadPackages(t *testing.T) map[string]*pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]*pkg{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bench") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		p := pkgs[rel]
		if p == nil {
			p = &pkg{dir: rel, imports: map[string]bool{}}
			pkgs[rel] = p
		}
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			p.doc = true
		}
		for _, imp := range f.Imports {
			s, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(s, module) {
				p.imports[strings.TrimPrefix(s, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for dir, p := range loadPackages(t) {
		if !p.doc {
			t.Errorf("package %s has no package doc comment", dir)
		}
	}
}

// rules: a package under the prefix must not import packages under any of
// the forbidden prefixes.
var rules = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{"internal/runtime", []string{"internal/hosting", "internal/api", "internal/server", "internal/pool", "internal/autoscale", "internal/catalog", "internal/cli"}, "runtimes never import modes, adapters or the pool"},
	{"internal/pool", []string{"internal/hosting", "internal/api", "internal/server", "internal/autoscale", "internal/catalog", "internal/cli"}, "the pool knows nothing of modes or wire formats"},
	{"internal/autoscale", []string{"internal/api", "internal/hosting", "internal/server", "internal/cli"}, "the autoscaler never imports an adapter or a mode service"},
	{"internal/hosting", []string{"internal/api", "internal/server", "internal/cli", "internal/autoscale"}, "mode services do not import adapters"},
	{"internal/catalog", []string{"internal/hosting", "internal/api", "internal/server", "internal/pool"}, "the store is a leaf"},
	{"internal/apierr", []string{"internal/"}, "apierr imports nothing"},
	{"internal/config", []string{"internal/"}, "config imports nothing"},
	{"internal/api", []string{"internal/server", "internal/cli"}, "adapters do not reach the composition root"},
}

func TestDependenciesPointDownward(t *testing.T) {
	for dir, p := range loadPackages(t) {
		for _, r := range rules {
			if dir != r.pkg && !strings.HasPrefix(dir, r.pkg+"/") {
				continue
			}
			for imp := range p.imports {
				for _, f := range r.forbidden {
					if (imp == f || strings.HasPrefix(imp, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f))) && !strings.HasPrefix(imp, r.pkg) {
						t.Errorf("%s imports %s: %s", dir, imp, r.why)
					}
				}
			}
		}
	}
}

// Only the composition root and the CLI may import the server; only the
// server wires adapters.
func TestOnlyTheRootWires(t *testing.T) {
	for dir, p := range loadPackages(t) {
		for imp := range p.imports {
			if imp == "internal/server" && dir != "internal/cli" {
				t.Errorf("%s imports internal/server: only the CLI's serve command may", dir)
			}
			if strings.HasPrefix(imp, "internal/api/") && !strings.HasPrefix(dir, "internal/api/") && dir != "internal/server" && dir != "internal/cli" {
				t.Errorf("%s imports %s: only the composition root wires adapters", dir, imp)
			}
		}
	}
}
