package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/testmodel"
)

// The custom-model commands against a real server: import a local GGUF,
// list, describe, a failing import, delete.
func TestCustomModel(t *testing.T) {
	ib := inferbox{t: t, server: startServer(t, nil)}
	out := ib.ok("custom-model", "import", "my-stories", testmodel.Stories260K(t), "--job-name", "cli-import")
	arn := regexp.MustCompile(`^arn:aws:bedrock:[a-z0-9-]+:\d{12}:imported-model/[a-z0-9]{12}\n$`)
	if !arn.MatchString(out) {
		t.Fatalf("import printed %q, want the imported model's ARN", out)
	}
	modelArn := strings.TrimSpace(out)

	list := ib.ok("custom-model", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME ") || !strings.HasPrefix(lines[1], "my-stories ") ||
		!strings.Contains(lines[1], " llama ") || !strings.HasSuffix(lines[1], modelArn) {
		t.Fatalf("custom-model list:\n%s", list)
	}
	desc := ib.ok("custom-model", "describe", modelArn)
	for _, want := range []string{"Name:", "my-stories", "Architecture:", "llama", "Job:", "cli-import", "Source:", testmodel.Stories260K(t)} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.gguf")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := ib.fails(1, "custom-model", "import", "bad", bad)
	if !strings.Contains(msg, "failed") || !strings.Contains(msg, "bad magic") || !strings.Contains(msg, bad) {
		t.Errorf("failing import: %s", msg)
	}
	msg = ib.fails(1, "custom-model", "import", "my-stories", testmodel.Stories260K(t))
	if !strings.Contains(msg, "ConflictException") {
		t.Errorf("import under a taken name: %s", msg)
	}
	ib.fails(2, "custom-model", "import", "only-a-name")

	if out := ib.ok("custom-model", "delete", "my-stories"); out != "Deleted custom model my-stories\n" {
		t.Errorf("delete printed %q", out)
	}
	msg = ib.fails(1, "custom-model", "describe", "my-stories")
	if !strings.Contains(msg, "ResourceNotFoundException") {
		t.Errorf("describe after delete: %s", msg)
	}
	if list := ib.ok("custom-model", "list"); strings.Count(list, "\n") != 1 {
		t.Errorf("list after delete:\n%s", list)
	}
}
