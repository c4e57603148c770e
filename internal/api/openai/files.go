package openai

// The Files API: POST /v1/files (multipart: file, purpose), GET /v1/files
// (purpose, limit, after, order), GET /v1/files/{id}, GET
// /v1/files/{id}/content and DELETE /v1/files/{id}. Bytes stream to and
// from the object store (never held in memory); metadata is in the
// catalog, so files survive a restart. Batch outputs are files too
// (purpose batch_output), written by the batch format.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
)

// MaxFileBytes is the largest upload: OpenAI's limit on a batch input file.
const MaxFileBytes = 200 << 20

// Expiry bounds (seconds after creation) and the default for batch inputs.
const (
	minExpirySeconds     = 3600
	maxExpirySeconds     = 2592000
	defaultBatchFileLife = 30 * 24 * 3600
)

// Purposes accepted on upload; batch_output is given to batch results only.
const (
	PurposeBatch       = "batch"
	PurposeBatchOutput = "batch_output"
)

// FileStore keeps file metadata (the catalog).
type FileStore interface {
	CreateOpenAIFile(ctx context.Context, f *catalog.OpenAIFile) error
	GetOpenAIFile(ctx context.Context, id string) (*catalog.OpenAIFile, error)
	ListOpenAIFiles(ctx context.Context, purpose string) ([]*catalog.OpenAIFile, error)
	DeleteOpenAIFile(ctx context.Context, id string) error
}

// files is the Files API's state.
type files struct {
	meta    FileStore
	objects objstore.Store
	prefix  string // where file bytes live, ending in "/"
	limit   int64  // the largest upload: MaxFileBytes
}

// WithFiles serves the Files API: metadata in meta, bytes in objects under
// prefixURI (an internal location, e.g. s3://inferbox-internal/openai/).
func (h *Handler) WithFiles(meta FileStore, objects objstore.Store, prefixURI string) *Handler {
	if prefixURI != "" && prefixURI[len(prefixURI)-1] != '/' {
		prefixURI += "/"
	}
	h.files = &files{meta: meta, objects: objects, prefix: prefixURI, limit: MaxFileBytes}
	h.mux.HandleFunc("POST /v1/files", h.uploadFile)
	h.mux.HandleFunc("GET /v1/files", h.listFiles)
	h.mux.HandleFunc("GET /v1/files/{id}", h.getFile)
	h.mux.HandleFunc("GET /v1/files/{id}/content", h.fileContent)
	h.mux.HandleFunc("DELETE /v1/files/{id}", h.deleteFile)
	return h
}

type fileObject struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt *int64 `json:"expires_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
}

func fileView(f *catalog.OpenAIFile) fileObject {
	o := fileObject{ID: f.ID, Object: "file", Bytes: f.Bytes, CreatedAt: f.CreatedAt, Filename: f.Filename,
		Purpose: f.Purpose, Status: "processed"}
	if f.ExpiresAt != 0 {
		o.ExpiresAt = &f.ExpiresAt
	}
	return o
}

func fileNotFound(id string) *apiError {
	return &apiError{status: 404, typ: "invalid_request_error", param: "id",
		msg: fmt.Sprintf("No such File object: %s", id)}
}

func tooLarge() *apiError {
	return &apiError{status: 400, typ: "invalid_request_error", param: "file", code: "file_too_large",
		msg: fmt.Sprintf("File is too large: the maximum size of a batch input file is %d bytes (200 MB).", MaxFileBytes)}
}

// errTooLarge ends an upload stream that passed MaxFileBytes.
var errTooLarge = errors.New("openai: file too large")

type capped struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *capped) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, errTooLarge
	}
	return n, err
}

// uploadFile streams the multipart "file" part into the store; "purpose"
// may come before or after it (an unknown purpose removes the stored
// bytes).
func (h *Handler) uploadFile(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > h.files.limit+1<<20 {
		writeError(w, tooLarge())
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		writeError(w, invalid("", "Invalid request: expected a multipart/form-data body with 'file' and 'purpose'."))
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, invalid("", "Invalid multipart body: %s", err.Error()))
		return
	}
	f := &catalog.OpenAIFile{ID: newID("file-"), CreatedAt: h.now().Unix(), Caller: callerOf(r.Context())}
	f.URI = h.files.prefix + "files/" + f.ID
	var expiry expiresAfter
	stored := false
	fail := func(err error) {
		if stored {
			_ = h.files.objects.Delete(context.WithoutCancel(r.Context()), f.URI)
		}
		writeError(w, err)
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(invalid("", "Invalid multipart body: %s", err.Error()))
			return
		}
		switch part.FormName() {
		case "purpose":
			b, _ := io.ReadAll(io.LimitReader(part, 256))
			f.Purpose = string(b)
		case "expires_after[anchor]":
			b, _ := io.ReadAll(io.LimitReader(part, 256))
			expiry.Anchor = string(b)
		case "expires_after[seconds]":
			b, _ := io.ReadAll(io.LimitReader(part, 256))
			n, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				fail(invalid("expires_after.seconds", "Invalid 'expires_after.seconds': '%s'. Expected an integer.", b))
				return
			}
			expiry.Seconds = n
		case "file":
			if stored {
				fail(invalid("file", "Only one file can be uploaded per request."))
				return
			}
			f.Filename = part.FileName()
			if f.Filename == "" {
				f.Filename = "file"
			}
			c := &capped{r: part, limit: h.files.limit}
			info, err := h.files.objects.Put(r.Context(), f.URI, c, objstore.PutOptions{ContentType: "application/octet-stream", Size: -1})
			if errors.Is(err, errTooLarge) || c.n > h.files.limit {
				fail(tooLarge())
				return
			}
			if err != nil {
				h.log.Error("store uploaded file", "file", f.ID, "err", err)
				fail(&apiError{status: 500, typ: "server_error", msg: "The file could not be stored."})
				return
			}
			f.Bytes, stored = info.Size, true
		}
		_ = part.Close()
	}
	switch {
	case !stored:
		fail(invalid("file", "Missing required parameter: 'file'."))
		return
	case f.Purpose == "":
		fail(invalid("purpose", "Missing required parameter: 'purpose'."))
		return
	case f.Purpose != PurposeBatch:
		fail(invalid("purpose", "Invalid value for 'purpose': '%s'. This server supports 'batch'.", f.Purpose))
		return
	}
	if expiry == (expiresAfter{}) {
		expiry.Seconds = defaultBatchFileLife
	} else if err := expiry.check("expires_after"); err != nil {
		fail(err)
		return
	}
	f.ExpiresAt = f.CreatedAt + expiry.Seconds
	if err := h.files.meta.CreateOpenAIFile(r.Context(), f); err != nil {
		fail(err)
		return
	}
	writeJSON(w, http.StatusOK, fileView(f))
}

// fileOf returns the file named by {id}.
func (h *Handler) fileOf(r *http.Request) (*catalog.OpenAIFile, error) {
	id := r.PathValue("id")
	f, err := h.files.meta.GetOpenAIFile(r.Context(), id)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && (!owns(r, f.Caller) || h.expired(f))) {
		return nil, fileNotFound(id)
	}
	return f, err
}

// expiresAfter is a file's expiry policy (`expires_after`,
// `output_expires_after`): the file expires Seconds after its creation.
type expiresAfter struct {
	Anchor  string `json:"anchor"`
	Seconds int64  `json:"seconds"`
}

// check validates an expiry policy given as param, in OpenAI's wording.
func (e expiresAfter) check(param string) error {
	if e.Anchor != "created_at" {
		return invalid(param+".anchor", "Invalid value for '%s.anchor': '%s'. Supported values are: 'created_at'.", param, e.Anchor)
	}
	if e.Seconds < minExpirySeconds || e.Seconds > maxExpirySeconds {
		return invalid(param+".seconds", "Invalid '%s.seconds': %d. Expected a value between %d (1 hour) and %d (30 days).",
			param, e.Seconds, minExpirySeconds, maxExpirySeconds)
	}
	return nil
}

// expired reports whether f's expiry time has passed.
func (h *Handler) expired(f *catalog.OpenAIFile) bool {
	return f.ExpiresAt != 0 && h.now().Unix() >= f.ExpiresAt
}

// ExpireFiles deletes every expired file (metadata, then bytes) and
// returns how many went. The composition root calls it periodically;
// expired files are invisible to requests before that.
func (h *Handler) ExpireFiles(ctx context.Context) (int, error) {
	if h.files == nil {
		return 0, nil
	}
	fs, err := h.files.meta.ListOpenAIFiles(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range fs {
		if !h.expired(f) {
			continue
		}
		if err := h.files.meta.DeleteOpenAIFile(ctx, f.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return n, err
		}
		if err := h.files.objects.Delete(ctx, f.URI); err != nil {
			h.log.Warn("delete expired file", "file", f.ID, "err", err)
		}
		n++
	}
	return n, nil
}

// owns reports whether the request's caller owns a file or batch created
// by owner: each API key sees only its own (with no keys configured,
// every caller is "" and sees everything), as an OpenAI project does.
func owns(r *http.Request, owner string) bool { return callerOf(r.Context()) == owner }

func (h *Handler) getFile(w http.ResponseWriter, r *http.Request) {
	f, err := h.fileOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, fileView(f))
}

func (h *Handler) fileContent(w http.ResponseWriter, r *http.Request) {
	f, err := h.fileOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rc, info, err := h.files.objects.Open(r.Context(), f.URI, nil)
	if err != nil {
		h.log.Error("open stored file", "file", f.ID, "err", err)
		writeError(w, &apiError{status: 500, typ: "server_error", msg: "The file's content could not be read."})
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
}

func (h *Handler) deleteFile(w http.ResponseWriter, r *http.Request) {
	f, err := h.fileOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := h.files.meta.DeleteOpenAIFile(r.Context(), f.ID); err != nil {
		writeError(w, err)
		return
	}
	if err := h.files.objects.Delete(r.Context(), f.URI); err != nil {
		h.log.Warn("delete stored file", "file", f.ID, "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": f.ID, "object": "file", "deleted": true})
}

// page is OpenAI's cursor page: items after the one whose id is after,
// at most limit of them.
func page[T any](items []T, id func(T) string, after string, limit int) ([]T, bool) {
	start := 0
	if after != "" {
		for i, it := range items {
			if id(it) == after {
				start = i + 1
				break
			}
		}
	}
	items = items[start:]
	if len(items) > limit {
		return items[:limit], true
	}
	return items, false
}

// listLimit reads ?limit (default def, 1..most).
func listLimit(r *http.Request, def, most int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, invalid("limit", "Invalid 'limit': expected an integer between 1 and %d.", most)
	}
	return n, nil
}

func (h *Handler) listFiles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := listLimit(r, 10000, 10000)
	if err != nil {
		writeError(w, err)
		return
	}
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		writeError(w, invalid("order", "Invalid value for 'order': '%s'. Expected 'asc' or 'desc'.", order))
		return
	}
	fs, err := h.files.meta.ListOpenAIFiles(r.Context(), q.Get("purpose"))
	if err != nil {
		writeError(w, err)
		return
	}
	fs = slices.DeleteFunc(fs, func(f *catalog.OpenAIFile) bool { return !owns(r, f.Caller) || h.expired(f) })
	if order != "asc" {
		for i, k := 0, len(fs)-1; i < k; i, k = i+1, k-1 {
			fs[i], fs[k] = fs[k], fs[i]
		}
	}
	fs, more := page(fs, func(f *catalog.OpenAIFile) string { return f.ID }, q.Get("after"), limit)
	data := make([]fileObject, 0, len(fs))
	for _, f := range fs {
		data = append(data, fileView(f))
	}
	resp := map[string]any{"object": "list", "data": data, "has_more": more, "first_id": nil, "last_id": nil}
	if len(data) > 0 {
		resp["first_id"], resp["last_id"] = data[0].ID, data[len(data)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}
