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
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/objstore"
)

// filesServer is the Files API over a real catalog and embedded store.
func filesServer(t *testing.T, limit int64) (*httptest.Server, objstore.Store) {
	t.Helper()
	_, srv, objects := filesHandler(t, limit)
	return srv, objects
}

// filesHandler is filesServer with its handler (to move its clock).
func filesHandler(t *testing.T, limit int64) (*Handler, *httptest.Server, objstore.Store) {
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
	return h, srv, objects
}

// upload posts a multipart body, chunked (no Content-Length), with the
// fields in the order given.
func upload(t *testing.T, url string, fields [][2]string) (int, map[string]any) {
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
	var body map[string]any
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
				e, _ := body["error"].(map[string]any)
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

// Batch files expire 30 days after creation by default, or when
// expires_after says; an expired file is gone for requests at once, and
// ExpireFiles deletes its bytes.
func TestFileExpiry(t *testing.T) {
	h, srv, objects := filesHandler(t, 1000)
	now := time.Unix(1_800_000_000, 0)
	h.now = func() time.Time { return now }
	line := "{}\n"
	status, def := upload(t, srv.URL, [][2]string{{"purpose", "batch"}, {"file", line}})
	if status != 200 || def["expires_at"] == nil {
		t.Fatalf("default upload: %d %v", status, def)
	}
	status, short := upload(t, srv.URL, [][2]string{{"purpose", "batch"}, {"expires_after[anchor]", "created_at"},
		{"expires_after[seconds]", "3600"}, {"file", line}})
	if status != 200 {
		t.Fatalf("upload with expires_after: %d %v", status, short)
	}
	created := float64(now.Unix())
	if def["expires_at"] != created+30*24*3600 || short["expires_at"] != created+3600 {
		t.Errorf("expires_at %v and %v, want created_at + 30 days and + 1 hour", def["expires_at"], short["expires_at"])
	}
	for _, bad := range [][2][2]string{
		{{"expires_after[anchor]", "created_at"}, {"expires_after[seconds]", "60"}},
		{{"expires_after[anchor]", "last_active_at"}, {"expires_after[seconds]", "3600"}},
	} {
		status, body := upload(t, srv.URL, [][2]string{{"purpose", "batch"}, bad[0], bad[1], {"file", line}})
		e, _ := body["error"].(map[string]any)
		if p, _ := e["param"].(string); status != 400 || !strings.HasPrefix(p, "expires_after.") {
			t.Errorf("%v: %d %v, want 400 naming expires_after", bad, status, body)
		}
	}
	get := func(id string) int {
		resp, err := http.Get(srv.URL + "/v1/files/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	shortID, defID := short["id"].(string), def["id"].(string)
	if n, err := h.ExpireFiles(context.Background()); err != nil || n != 0 {
		t.Fatalf("nothing expired yet: %d %v", n, err)
	}
	now = now.Add(3600 * time.Second)
	if get(shortID) != 404 || get(defID) != 200 {
		t.Errorf("after an hour: %d and %d, want the short-lived file gone (404), the other there", get(shortID), get(defID))
	}
	if n, err := h.ExpireFiles(context.Background()); err != nil || n != 1 {
		t.Fatalf("ExpireFiles: %d %v, want 1", n, err)
	}
	if n := stored(t, objects); n != 1 {
		t.Errorf("%d objects stored after expiry, want 1", n)
	}
	now = now.Add(30 * 24 * time.Hour)
	if n, err := h.ExpireFiles(context.Background()); err != nil || n != 1 || get(defID) != 404 || stored(t, objects) != 0 {
		t.Errorf("after 30 days: expired %d (%v), file %d, %d objects", n, err, get(defID), stored(t, objects))
	}
}
