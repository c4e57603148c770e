package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/objstore"
)

// filesServer is the Files API over a real catalog and embedded store.
func filesServer(t *testing.T, limit int64) (*httptest.Server, objstore.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := catalog.Open(ctx, filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.InitOpenAIFiles(ctx); err != nil {
		t.Fatal(err)
	}
	emb, err := objstore.OpenEmbedded(filepath.Join(dir, "objects"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := emb.CreateBucket(ctx, "internal"); err != nil {
		t.Fatal(err)
	}
	objects := objstore.NewResolver(emb)
	svc, err := genai.New(genai.Config{}, genai.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	h := New(svc, nil, slog.New(slog.DiscardHandler)).WithFiles(store, objects, "s3://internal/openai")
	h.files.limit = limit
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, objects
}

// upload posts a multipart body, chunked (no Content-Length), with the
// fields in the order given.
func upload(t *testing.T, url string, fields [][2]string) (int, map[string]map[string]any) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, f := range fields {
			var w io.Writer
			if f[0] == "file" {
				w, _ = mw.CreateFormFile("file", "in.jsonl")
			} else {
				w, _ = mw.CreateFormField(f[0])
			}
			_, _ = io.WriteString(w, f[1])
		}
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/files", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

func stored(t *testing.T, objects objstore.Store) int {
	t.Helper()
	page, err := objects.List(context.Background(), "s3://internal/openai/files/", objstore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Objects)
}

// Uploads stream to the store; one past the limit, or with a purpose
// refused after the bytes were stored, leaves nothing behind.
func TestUploadLimits(t *testing.T) {
	srv, objects := filesServer(t, 1000)
	line := strings.Repeat("x", 99) + "\n"
	cases := []struct {
		name   string
		fields [][2]string
		status int
		param  string
		code   string
		kept   int
	}{
		{"at the limit", [][2]string{{"purpose", "batch"}, {"file", strings.Repeat(line, 10)}}, 200, "", "", 1},
		{"purpose after the file", [][2]string{{"file", line}, {"purpose", "batch"}}, 200, "", "", 2},
		{"one byte over", [][2]string{{"purpose", "batch"}, {"file", strings.Repeat(line, 10) + "x"}}, 400, "file", "file_too_large", 2},
		{"unknown purpose after the file", [][2]string{{"file", line}, {"purpose", "fine-tune"}}, 400, "purpose", "", 2},
		{"no purpose", [][2]string{{"file", line}}, 400, "purpose", "", 2},
		{"no file", [][2]string{{"purpose", "batch"}}, 400, "file", "", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := upload(t, srv.URL, c.fields)
			if status != c.status {
				t.Fatalf("status %d, want %d: %v", status, c.status, body)
			}
			if c.status != 200 {
				e := body["error"]
				if e["param"] != c.param || e["type"] != "invalid_request_error" || (c.code != "" && e["code"] != c.code) {
					t.Errorf("error %v, want param %q code %q", e, c.param, c.code)
				}
			}
			if n := stored(t, objects); n != c.kept {
				t.Errorf("%d objects stored, want %d", n, c.kept)
			}
		})
	}
	// The stored bytes come back as they went in.
	resp, err := http.Get(srv.URL + "/v1/files?order=asc")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []fileObject `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Data) != 2 || list.Data[0].Bytes != 1000 {
		t.Fatalf("files %+v", list.Data)
	}
	resp, err = http.Get(srv.URL + "/v1/files/" + list.Data[0].ID + "/content")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, []byte(strings.Repeat(line, 10))) {
		t.Errorf("content: %d bytes", len(got))
	}
}
