// Package testmodel finds the third-party model files tests read from the
// shared folder beside the repository (../shared/models; see its README):
// they are never copied into the repository. A missing file fails the test
// with where it was looked for, rather than skipping it, so a test that
// needs a real model cannot pass by not running.
//
// Only tests import testmodel; it imports nothing from inferbox.
package testmodel

import (
	"os"
	"path/filepath"
	"testing"
)

// Stories260K is the path of the stories260K GGUF model.
func Stories260K(t testing.TB) string {
	t.Helper()
	return Path(t, "stories260K.gguf")
}

// Path is the path of a file in ../shared/models.
func Path(t testing.TB, name string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testmodel: %v", err)
	}
	p := filepath.Join(filepath.Dir(root), "shared", "models", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testmodel: %v (the shared test models must sit beside the repository, in ../shared/models)", err)
	}
	return p
}

// repoRoot walks up from the working directory to the folder with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
