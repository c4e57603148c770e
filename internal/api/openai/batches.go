package openai

// The Batch API: POST /v1/batches, GET /v1/batches/{id}, GET /v1/batches
// (limit, after) and POST /v1/batches/{id}/cancel, over genai.Batches (a
// job of kind "openai" in the catalog, low priority on the model's shared
// pool, metered at the batch rate). Each input line {custom_id, method,
// url, body} runs through the same handler as the interactive
// /v1/chat/completions or /v1/completions; successes go to the output
// file, failures to the error file, both /v1/files objects of purpose
// batch_output.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/genai"
)

// BatchKind is the job kind of OpenAI batches.
const BatchKind = "openai"

// maxBatchRequests is OpenAI's limit on requests in one batch input file.
const maxBatchRequests = 50000

// batchEndpoint reports whether a batch may target endpoint.
func batchEndpoint(endpoint string) bool {
	return endpoint == "/v1/chat/completions" || endpoint == "/v1/completions"
}

// batchExtra is what an OpenAI batch keeps in catalog.ModelJob.Extra.
type batchExtra struct {
	Endpoint     string            `json:"endpoint"`
	InputFileID  string            `json:"input_file_id"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Caller       string            `json:"caller,omitempty"`
	OutputFileID string            `json:"output_file_id,omitempty"`
	ErrorFileID  string            `json:"error_file_id,omitempty"`
	Errors       []batchError      `json:"errors,omitempty"`
	// OutputLife is output_expires_after.seconds (0: outputs do not expire).
	OutputLife int64 `json:"output_life,omitempty"`
}

type batchError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int    `json:"line"`
}

func extraOf(j *catalog.ModelJob) batchExtra {
	var x batchExtra
	_ = json.Unmarshal(j.Extra, &x)
	return x
}

func setExtra(j *catalog.ModelJob, x batchExtra) {
	j.Extra, _ = json.Marshal(x)
}

// WithBatches serves the Batch API over batches, whose "openai" format is
// h.BatchFormat(). It needs WithFiles first.
func (h *Handler) WithBatches(batches *genai.Batches) *Handler {
	h.batches = batches
	h.mux.HandleFunc("POST /v1/batches", h.createBatch)
	h.mux.HandleFunc("GET /v1/batches", h.listBatches)
	h.mux.HandleFunc("GET /v1/batches/{id}", h.getBatch)
	h.mux.HandleFunc("POST /v1/batches/{id}/cancel", h.cancelBatch)
	return h
}

type createBatchReq struct {
	InputFileID        string            `json:"input_file_id"`
	Endpoint           string            `json:"endpoint"`
	CompletionWindow   string            `json:"completion_window"`
	Metadata           map[string]string `json:"metadata"`
	OutputExpiresAfter *expiresAfter     `json:"output_expires_after"`
}

func (h *Handler) createBatch(w http.ResponseWriter, r *http.Request) {
	var req createBatchReq
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case req.InputFileID == "":
		writeError(w, invalid("input_file_id", "Missing required parameter: 'input_file_id'."))
		return
	case req.Endpoint == "":
		writeError(w, invalid("endpoint", "Missing required parameter: 'endpoint'."))
		return
	case !batchEndpoint(req.Endpoint):
		writeError(w, invalid("endpoint", "Invalid value for 'endpoint': '%s'. Supported values are: '/v1/chat/completions' and '/v1/completions'.", req.Endpoint))
		return
	case req.CompletionWindow != "24h":
		writeError(w, invalid("completion_window", "Invalid value for 'completion_window': '%s'. Supported values are: '24h'.", req.CompletionWindow))
		return
	case len(req.Metadata) > 16:
		writeError(w, invalid("metadata", "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got %d instead.", len(req.Metadata)))
		return
	}
	if e := req.OutputExpiresAfter; e != nil {
		if err := e.check("output_expires_after"); err != nil {
			writeError(w, err)
			return
		}
	}
	f, err := h.files.meta.GetOpenAIFile(r.Context(), req.InputFileID)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && (!owns(r, f.Caller) || h.expired(f))) {
		writeError(w, &apiError{status: 400, typ: "invalid_request_error", param: "input_file_id",
			msg: fmt.Sprintf("Invalid 'input_file_id': '%s'. File not found.", req.InputFileID)})
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if f.Purpose != PurposeBatch {
		writeError(w, invalid("input_file_id", "Invalid 'input_file_id': '%s'. The file must have purpose 'batch', not '%s'.", f.ID, f.Purpose))
		return
	}
	j := &catalog.ModelJob{ID: newID("batch_"), Kind: BatchKind, InputURI: f.URI, OutputURI: h.files.prefix, TimeoutHours: 24}
	x := batchExtra{Endpoint: req.Endpoint, InputFileID: f.ID, Metadata: req.Metadata, Caller: callerOf(r.Context())}
	if req.OutputExpiresAfter != nil {
		x.OutputLife = req.OutputExpiresAfter.Seconds
	}
	setExtra(j, x)
	if err := h.batches.Submit(r.Context(), j); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, batchView(j))
}

// batchOf returns the batch named by {id}.
func (h *Handler) batchOf(r *http.Request) (*catalog.ModelJob, error) {
	id := r.PathValue("id")
	j, err := h.batches.Get(r.Context(), id)
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && (j.Kind != BatchKind || !owns(r, extraOf(j).Caller))) {
		return nil, &apiError{status: 404, typ: "invalid_request_error", param: "id", msg: fmt.Sprintf("No batch found with id '%s'.", id)}
	}
	return j, err
}

func (h *Handler) getBatch(w http.ResponseWriter, r *http.Request) {
	j, err := h.batchOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, batchView(j))
}

// listBatches lists newest first, as OpenAI does (limit 1..100, default 20).
func (h *Handler) listBatches(w http.ResponseWriter, r *http.Request) {
	limit, err := listLimit(r, 20, 100)
	if err != nil {
		writeError(w, err)
		return
	}
	js, err := h.batches.List(r.Context(), BatchKind)
	if err != nil {
		writeError(w, err)
		return
	}
	js = slices.DeleteFunc(js, func(j *catalog.ModelJob) bool { return !owns(r, extraOf(j).Caller) })
	for i, k := 0, len(js)-1; i < k; i, k = i+1, k-1 {
		js[i], js[k] = js[k], js[i]
	}
	js, more := page(js, func(j *catalog.ModelJob) string { return j.ID }, r.URL.Query().Get("after"), limit)
	data := make([]map[string]any, 0, len(js))
	for _, j := range js {
		data = append(data, batchView(j))
	}
	resp := map[string]any{"object": "list", "data": data, "has_more": more, "first_id": nil, "last_id": nil}
	if len(js) > 0 {
		resp["first_id"], resp["last_id"] = js[0].ID, js[len(js)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

// cancelBatch asks a running batch to stop: cancelling, then cancelled
// with the output of the requests already done. Cancelling a cancelling
// or cancelled batch returns it; a finished one is a 409.
func (h *Handler) cancelBatch(w http.ResponseWriter, r *http.Request) {
	j, err := h.batchOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	switch {
	case j.Status == catalog.ModelJobStopping || j.Status == catalog.ModelJobStopped:
	case catalog.ModelJobTerminal(j.Status):
		writeError(w, &apiError{status: 409, typ: "invalid_request_error",
			msg: fmt.Sprintf("Cannot cancel a batch with status '%s'.", batchStatus(j))})
		return
	default:
		if j, err = h.batches.Stop(r.Context(), j.ID); err != nil {
			writeError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, batchView(j))
}

// batchStatus maps the job's status onto OpenAI's.
func batchStatus(j *catalog.ModelJob) string {
	switch j.Status {
	case catalog.ModelJobSubmitted, catalog.ModelJobValidating:
		return "validating"
	case catalog.ModelJobScheduled, catalog.ModelJobInProgress:
		if j.Counts.Total > 0 && j.Counts.Processed == j.Counts.Total {
			return "finalizing"
		}
		return "in_progress"
	case catalog.ModelJobCompleted:
		return "completed"
	case catalog.ModelJobPartiallyCompleted, catalog.ModelJobExpired:
		return "expired" // the 24 h window ran out
	case catalog.ModelJobFailed:
		return "failed"
	case catalog.ModelJobStopping:
		return "cancelling"
	case catalog.ModelJobStopped:
		return "cancelled"
	}
	return "validating"
}

func unix(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.Unix()
}

// batchView is the Batch object.
func batchView(j *catalog.ModelJob) map[string]any {
	x := extraOf(j)
	status := batchStatus(j)
	v := map[string]any{
		"id": j.ID, "object": "batch", "endpoint": x.Endpoint, "errors": nil,
		"input_file_id": x.InputFileID, "completion_window": "24h", "status": status,
		"output_file_id": nil, "error_file_id": nil,
		"created_at": j.SubmitTime.Unix(), "in_progress_at": unix(j.StartTime),
		"expires_at":    j.SubmitTime.Add(24 * time.Hour).Unix(),
		"finalizing_at": nil, "completed_at": nil, "failed_at": nil, "expired_at": nil,
		"cancelling_at": nil, "cancelled_at": nil,
		"request_counts": map[string]int{"total": j.Counts.Total, "completed": j.Counts.Success, "failed": j.Counts.Errors},
		"metadata":       x.Metadata,
		"usage": map[string]any{
			"input_tokens": j.Counts.InputTokens, "input_tokens_details": map[string]int{"cached_tokens": 0},
			"output_tokens": j.Counts.OutputTokens, "output_tokens_details": map[string]int{"reasoning_tokens": 0},
			"total_tokens": j.Counts.InputTokens + j.Counts.OutputTokens,
		},
	}
	if x.OutputFileID != "" {
		v["output_file_id"] = x.OutputFileID
	}
	if x.ErrorFileID != "" {
		v["error_file_id"] = x.ErrorFileID
	}
	if len(x.Errors) > 0 {
		v["errors"] = map[string]any{"object": "list", "data": x.Errors}
	} else if j.Status == catalog.ModelJobFailed && j.Message != "" {
		v["errors"] = map[string]any{"object": "list", "data": []batchError{{Code: "failed", Message: j.Message}}}
	}
	end := unix(j.EndTime)
	switch status {
	case "finalizing":
		v["finalizing_at"] = j.LastModifiedTime.Unix()
	case "completed":
		v["finalizing_at"], v["completed_at"] = end, end
	case "failed":
		v["failed_at"] = end
	case "expired":
		v["expired_at"] = end
	case "cancelling":
		v["cancelling_at"] = j.LastModifiedTime.Unix()
	case "cancelled":
		v["cancelling_at"], v["cancelled_at"] = end, end
	}
	return v
}

// BatchFormat runs OpenAI batch lines through h's interactive handlers and
// writes the output and error files.
type BatchFormat struct{ h *Handler }

var (
	_ genai.BatchFormat    = (*BatchFormat)(nil)
	_ genai.BatchValidator = (*BatchFormat)(nil)
)

// BatchFormat returns the "openai" job format over h (which needs
// WithFiles).
func (h *Handler) BatchFormat() *BatchFormat { return &BatchFormat{h: h} }

type batchLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// Validate fails the batch as OpenAI does: an empty file, too many
// requests, or a custom_id used twice. It streams the lines, keeping the
// custom_ids seen (up to the request limit) and a count.
func (f *BatchFormat) Validate(ctx context.Context, job *catalog.ModelJob, lines iter.Seq[[]byte]) error {
	x := extraOf(job)
	fail := func(e batchError) error {
		x.Errors = append(x.Errors, e)
		setExtra(job, x)
		return errors.New(e.Message)
	}
	seen := map[string]int{}
	var dup *batchError
	n := 0
	for l := range lines {
		n++
		if dup != nil || n > maxBatchRequests {
			continue // counting: too many requests is reported first
		}
		var in struct {
			CustomID string `json:"custom_id"`
		}
		if json.Unmarshal(l, &in) != nil || in.CustomID == "" {
			continue // a line error, reported in the error file
		}
		if first, ok := seen[in.CustomID]; ok {
			line, param := n, "custom_id"
			dup = &batchError{Code: "duplicate_custom_id", Param: &param, Line: &line,
				Message: fmt.Sprintf("The custom_id '%s' on line %d was already used on line %d; custom_ids must be unique within a batch.", in.CustomID, n, first)}
			continue
		}
		seen[in.CustomID] = n
	}
	switch {
	case n == 0:
		return fail(batchError{Code: "empty_file", Message: "The batch input file is empty."})
	case n > maxBatchRequests:
		return fail(batchError{Code: "too_many_requests", Message: fmt.Sprintf("The batch input file has %d requests; the limit is %d.", n, maxBatchRequests)})
	case dup != nil:
		return fail(*dup)
	}
	return nil
}

type lineResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

type lineError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type outputLine struct {
	ID       string        `json:"id"`
	CustomID *string       `json:"custom_id"`
	Response *lineResponse `json:"response"`
	Error    *lineError    `json:"error"`
}

// Record runs line i through the endpoint's interactive handler, as the
// batch's creator, at low priority and metered as batch.
func (f *BatchFormat) Record(ctx context.Context, job *catalog.ModelJob, i int, line []byte) genai.BatchRecord {
	x := extraOf(job)
	out := outputLine{ID: newID("batch_req_")}
	fail := func(code, msg string) genai.BatchRecord {
		out.Error = &lineError{Code: code, Message: msg}
		b, _ := json.Marshal(out)
		return genai.BatchRecord{Line: b, Failed: true}
	}
	var in batchLine
	if err := json.Unmarshal(line, &in); err != nil {
		return fail("invalid_json", fmt.Sprintf("Line %d is not a valid JSON object.", i+1))
	}
	if in.CustomID != "" {
		out.CustomID = &in.CustomID
	}
	var body map[string]json.RawMessage
	switch {
	case in.CustomID == "":
		return fail("missing_required_parameter", fmt.Sprintf("Line %d: missing required parameter 'custom_id'.", i+1))
	case in.Method != http.MethodPost:
		return fail("invalid_method", fmt.Sprintf("Line %d: the method must be 'POST', not '%s'.", i+1, in.Method))
	case in.URL != x.Endpoint:
		return fail("mismatched_url", fmt.Sprintf("Line %d: the url '%s' does not match the batch's endpoint '%s'.", i+1, in.URL, x.Endpoint))
	case json.Unmarshal(in.Body, &body) != nil:
		return fail("invalid_body", fmt.Sprintf("Line %d: the body must be a JSON object.", i+1))
	case string(body["stream"]) == "true":
		return fail("invalid_body", fmt.Sprintf("Line %d: streaming is not supported in a batch.", i+1))
	}
	rctx := genai.WithBatch(withCaller(ctx, x.Caller), genai.ModeBatch)
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, in.URL, bytes.NewReader(in.Body))
	if err != nil {
		return fail("invalid_url", fmt.Sprintf("Line %d: invalid url.", i+1))
	}
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{header: http.Header{}}
	f.h.mux.ServeHTTP(rec, req)
	out.Response = &lineResponse{StatusCode: rec.status, RequestID: newID("req_"), Body: rec.body.Bytes()}
	if rec.status != http.StatusOK {
		var e struct {
			Error struct {
				Code    *string `json:"code"`
				Message string  `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		code := "invalid_request"
		if e.Error.Code != nil {
			code = *e.Error.Code
		} else if rec.status >= 500 {
			code = "server_error"
		}
		return fail(code, e.Error.Message)
	}
	var u struct {
		Usage usage `json:"usage"`
	}
	_ = json.Unmarshal(rec.body.Bytes(), &u)
	b, _ := json.Marshal(out)
	return genai.BatchRecord{Line: b, InputTokens: u.Usage.PromptTokens, OutputTokens: u.Usage.CompletionTokens}
}

// Write stores the successes as the output file and the failures as the
// error file (each only if it has lines), streaming the records, and
// records their ids in job.
func (f *BatchFormat) Write(ctx context.Context, job *catalog.ModelJob, _ string, records iter.Seq[genai.BatchRecord]) error {
	x := extraOf(job)
	for _, failed := range []bool{false, true} {
		if (failed && job.Counts.Errors == 0) || (!failed && job.Counts.Success == 0) {
			continue
		}
		name := job.ID + "_output.jsonl"
		if failed {
			name = job.ID + "_error.jsonl"
		}
		file, err := f.h.storeFile(ctx, name, x, records, func(r genai.BatchRecord) bool { return r.Failed == failed })
		if err != nil {
			return err
		}
		if failed {
			x.ErrorFileID = file.ID
		} else {
			x.OutputFileID = file.ID
		}
	}
	setExtra(job, x)
	return nil
}

// storeFile writes a file made by the server (a batch's results, owned by
// the batch's caller, expiring as it asked): the lines of the records keep
// accepts.
func (h *Handler) storeFile(ctx context.Context, name string, x batchExtra, records iter.Seq[genai.BatchRecord], keep func(genai.BatchRecord) bool) (*catalog.OpenAIFile, error) {
	file := &catalog.OpenAIFile{ID: newID("file-"), Purpose: PurposeBatchOutput, Filename: name, CreatedAt: h.now().Unix(), Caller: x.Caller}
	if x.OutputLife > 0 {
		file.ExpiresAt = file.CreatedAt + x.OutputLife
	}
	file.URI = h.files.prefix + "files/" + file.ID
	info, _, err := genai.PutRecords(ctx, h.files.objects, file.URI, records, keep)
	if err != nil {
		return nil, fmt.Errorf("store batch file %s: %w", name, err)
	}
	file.Bytes = info.Size
	if err := h.files.meta.CreateOpenAIFile(ctx, file); err != nil {
		_ = h.files.objects.Delete(ctx, file.URI)
		return nil, err
	}
	return file, nil
}

// recorder is the in-memory ResponseWriter a batch line's handler writes to.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}
