package genai

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/runtime/llama"
	"github.com/inferbox/inferbox/internal/testmodel"
)

// newImporting is the stories service with model import enabled: local
// paths only (no s3:// backend), copies under a temporary directory.
func newImporting(t *testing.T) *Service {
	t.Helper()
	s := newStoriesTB(t, Config{Concurrency: 1, ImportDir: filepath.Join(t.TempDir(), "imported")})
	s.deps.Objects = objstore.NewResolver(nil)
	return s
}

func waitImport(t *testing.T, s *Service, job string) ImportJob {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := s.GetImportJob(job)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != ImportInProgress {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("import job %s still InProgress", job)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

func TestImportServesOnlyThroughProvisioned(t *testing.T) {
	s := newImporting(t)
	ctx := context.Background()
	job, err := s.CreateImport(ctx, ImportRequest{JobName: "job-1", ImportedModelName: "my-stories",
		RoleArn: "arn:aws:iam::000000000000:role/x", SourceURI: testmodel.Stories260K(t)})
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != ImportInProgress {
		t.Fatalf("new job status %s", job.Status)
	}
	if j := waitImport(t, s, "job-1"); j.Status != ImportCompleted || j.ImportedModelID == "" {
		t.Fatalf("job %+v", j)
	}
	m, err := s.GetImported("my-stories")
	if err != nil {
		t.Fatal(err)
	}
	if m.Architecture != "llama" || len(m.SHA256) != 64 || filepath.Base(m.Path) != m.SHA256+".gguf" {
		t.Fatalf("imported model %+v", m)
	}
	if _, err := s.CreateImport(ctx, ImportRequest{JobName: "job-2", ImportedModelName: "MY-STORIES",
		RoleArn: "r", SourceURI: testmodel.Stories260K(t)}); apierr.As(err).Code != "ConflictException" {
		t.Fatalf("same model name: %v", err)
	}
	if _, err := s.CreateImport(ctx, ImportRequest{JobName: "job-1", ImportedModelName: "other",
		RoleArn: "r", SourceURI: testmodel.Stories260K(t)}); err == nil || !strings.Contains(err.Error(), "job name is currently in use") {
		t.Fatalf("same job name: %v", err)
	}

	greedy := llama.Params{Temperature: 0, MaxTokens: 20}
	for _, ref := range []string{"my-stories", ImportedRef + m.ID, "arn:aws:bedrock:us-east-1:000000000000:imported-model/" + m.ID} {
		_, err := s.Generate(ctx, &Request{ModelID: ref, Prompt: "Once upon a time", Params: greedy}, nil)
		if !errors.Is(err, ErrOnDemandCustom) || apierr.As(err).Message != OnDemandCustomMessage {
			t.Fatalf("on-demand %s: %v", ref, err)
		}
	}

	pt, err := s.CreateProvisioned(ctx, "pt-custom", "my-stories", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if pt.ModelID != ImportedRef+m.ID {
		t.Fatalf("provisioned model id %q", pt.ModelID)
	}
	inService(t, s, pt.ID)
	got, err := s.Generate(ctx, &Request{ModelID: ProvisionedRef + pt.ID, Prompt: "Once upon a time", Params: greedy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Generate(ctx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time", Params: greedy}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != want.Text || got.Text == "" {
		t.Fatalf("imported %q, foundation %q", got.Text, want.Text)
	}

	err = s.DeleteImported(ctx, "my-stories")
	if err == nil || !strings.Contains(err.Error(), "pt-custom") {
		t.Fatalf("delete while provisioned: %v", err)
	}
	if err := s.DeleteProvisioned(ctx, pt.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImported(ctx, "my-stories"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copy after delete: %v", err)
	}
	if _, err := s.GetImported(m.ID); !errors.Is(err, ErrImportedNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := s.OnDemandError("my-stories"); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("deleted model on demand: %v", err)
	}
}

func TestImportFailures(t *testing.T) {
	s := newImporting(t)
	ctx := context.Background()
	dir := t.TempDir()
	notGGUF := filepath.Join(dir, "model.gguf")
	if err := os.WriteFile(notGGUF, []byte("this is not a model file, only text that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two")
	for _, n := range []string{"a.gguf", "b.gguf"} {
		if err := os.MkdirAll(two, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(two, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, source, want string }{
		{"not-gguf", notGGUF, "bad magic"},
		{"missing", filepath.Join(dir, "absent.gguf"), "does not exist"},
		{"two-files", two, "holds 2 .gguf files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.CreateImport(ctx, ImportRequest{JobName: tc.name, ImportedModelName: "m-" + tc.name, RoleArn: "r", SourceURI: tc.source}); err != nil {
				t.Fatal(err)
			}
			j := waitImport(t, s, tc.name)
			t.Logf("failure message: %s", j.Failure)
			if j.Status != ImportFailed || !strings.Contains(j.Failure, tc.want) || !strings.Contains(j.Failure, filepath.Base(tc.source)) {
				t.Fatalf("job %+v, want Failed naming %q", j, tc.want)
			}
			if strings.Contains(j.Failure, s.cfg.ImportDir) {
				t.Fatalf("failure names the data directory: %s", j.Failure)
			}
		})
	}
	if n := len(s.ListImported()); n != 0 {
		t.Fatalf("%d imported models after failures", n)
	}
	entries, _ := os.ReadDir(s.cfg.ImportDir)
	if len(entries) != 0 {
		t.Fatalf("import directory keeps %d files after failures", len(entries))
	}
	if _, err := s.CreateImport(ctx, ImportRequest{ImportedModelName: "x", RoleArn: "r", SourceURI: notGGUF}); err == nil || !strings.Contains(err.Error(), "'jobName'") {
		t.Fatalf("missing job name: %v", err)
	}
}

// BenchmarkImport is one import job of stories260K from a local path:
// copy with SHA-256, a check load, registration (the job's whole life).
func BenchmarkImport(b *testing.B) {
	s := newStoriesTB(b, Config{Concurrency: 1, ImportDir: filepath.Join(b.TempDir(), "imported")})
	s.deps.Objects = objstore.NewResolver(nil)
	ctx := context.Background()
	src := testmodel.Stories260K(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("m%d", i)
		if _, err := s.CreateImport(ctx, ImportRequest{JobName: name, ImportedModelName: name, RoleArn: "r", SourceURI: src}); err != nil {
			b.Fatal(err)
		}
		for {
			j, err := s.GetImportJob(name)
			if err != nil {
				b.Fatal(err)
			}
			if j.Status == ImportFailed {
				b.Fatal(j.Failure)
			}
			if j.Status == ImportCompleted {
				break
			}
			time.Sleep(100 * time.Microsecond) // polling interval
		}
	}
}
