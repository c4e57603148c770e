package bedrock

// Batch inference (model invocation jobs): CreateModelInvocationJob,
// GetModelInvocationJob, ListModelInvocationJobs, StopModelInvocationJob,
// and the record format — JSONL {recordId, modelInput} in the job model's
// InvokeModel body (bodies.go: Meta Llama, Amazon Titan Text or Mistral),
// {recordId, modelInput, modelOutput | error} out, modelOutput being that
// body's InvokeModel reply; one
// <input name>.out per input file plus manifest.json.out, under
// <output prefix>/<job id>/.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/pool"
)

// BatchKind is the job kind of model invocation jobs.
const BatchKind = "bedrock"

// BatchFormat runs Bedrock batch records on svc and writes outputs to objects.
type BatchFormat struct {
	Svc     *genai.Service
	Objects objstore.Store
}

var _ genai.BatchFormat = (*BatchFormat)(nil)

type batchIn struct {
	RecordID   string          `json:"recordId"`
	ModelInput json.RawMessage `json:"modelInput"`
}

type batchError struct {
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

type batchOut struct {
	RecordID    string          `json:"recordId"`
	ModelInput  json.RawMessage `json:"modelInput,omitempty"`
	ModelOutput any             `json:"modelOutput,omitempty"`
	Error       *batchError     `json:"error,omitempty"`
}

// Record runs one line: a malformed line or a refused modelInput is a
// failed record with an error object.
func (f *BatchFormat) Record(ctx context.Context, job *catalog.ModelJob, i int, line []byte) genai.BatchRecord {
	var in batchIn
	fail := func(code int, msg string) genai.BatchRecord {
		b := outLine(batchOut{RecordID: in.RecordID, ModelInput: in.ModelInput, Error: &batchError{code, msg}})
		return genai.BatchRecord{Line: b, Failed: true}
	}
	if err := json.Unmarshal(line, &in); err != nil || len(in.ModelInput) == 0 {
		in = batchIn{}
		in.RecordID = recordID(i)
		return fail(400, "Malformed input record: each line must be a JSON object with a modelInput object.")
	}
	if in.RecordID == "" {
		in.RecordID = recordID(i)
	}
	info, ok := f.Svc.Model(job.ModelID)
	if !ok {
		return fail(400, "The provided model identifier is invalid.")
	}
	pb := bodyFor(info)
	prompt, params, err := pb.parse(in.ModelInput, info.ContextLength)
	if err != nil {
		return fail(400, apierr.As(err).Message)
	}
	res, err := f.Svc.Generate(ctx, &genai.Request{ModelID: info.ID, Prompt: prompt, Params: params,
		API: "bedrock", Priority: pool.Low, Mode: genai.ModeBatch}, nil)
	if err != nil {
		ae := apierr.As(err)
		code, _ := codes.Lookup(ae)
		r := fail(code, ae.Message)
		r.InputTokens, r.OutputTokens = res.InputTokens, res.OutputTokens
		return r
	}
	b := outLine(batchOut{RecordID: in.RecordID, ModelInput: in.ModelInput, ModelOutput: pb.reply(res)})
	return genai.BatchRecord{Line: b, InputTokens: res.InputTokens, OutputTokens: res.OutputTokens}
}

// outLine encodes one output line without HTML escaping, so modelInput
// and the generated text read as they were (a Mistral "<s>" stays "<s>").
func outLine(o batchOut) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(o)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// recordID is the id given to a record without one: 11 characters.
func recordID(i int) string {
	s := strconv.Itoa(i + 1)
	return "REC" + strings.Repeat("0", max(0, 8-len(s))) + s
}

// Write stores <input>.out and manifest.json.out under <output>/<job id>/,
// streaming the records.
func (f *BatchFormat) Write(ctx context.Context, job *catalog.ModelJob, inputName string, records iter.Seq[genai.BatchRecord]) error {
	prefix := strings.TrimSuffix(job.OutputURI, "/") + "/" + job.ID + "/"
	if _, _, err := genai.PutRecords(ctx, f.Objects, prefix+inputName+".out", records, nil); err != nil {
		return err
	}
	c := job.Counts
	m, _ := json.Marshal(map[string]int{"totalRecordCount": c.Total, "processedRecordCount": c.Processed,
		"successRecordCount": c.Success, "errorRecordCount": c.Errors,
		"inputTokenCount": c.InputTokens, "outputTokenCount": c.OutputTokens})
	_, err := f.Objects.Put(ctx, prefix+"manifest.json.out", bytes.NewReader(m), objstore.PutOptions{ContentType: "application/json"})
	return err
}

// BatchHandler serves the model-invocation-job operations.
type BatchHandler struct {
	h       *Handler
	batches *genai.Batches
	arn     func(id string) string
}

// NewBatch returns the batch handler over h's service.
func NewBatch(h *Handler, batches *genai.Batches, region, account string) *BatchHandler {
	return &BatchHandler{h: h, batches: batches, arn: func(id string) string {
		return "arn:aws:bedrock:" + region + ":" + account + ":model-invocation-job/" + id
	}}
}

// Register mounts the routes on mux.
func (b *BatchHandler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /model-invocation-job", b.create)
	mux.HandleFunc("GET /model-invocation-job/{jobIdentifier}", b.get)
	mux.HandleFunc("GET /model-invocation-jobs", b.list)
	mux.HandleFunc("POST /model-invocation-job/{jobIdentifier}/stop", b.stop)
}

type s3Config struct {
	S3Uri         string `json:"s3Uri"`
	S3InputFormat string `json:"s3InputFormat,omitempty"`
}

type createJobReq struct {
	JobName            string `json:"jobName"`
	RoleArn            string `json:"roleArn"`
	ModelID            string `json:"modelId"`
	ClientRequestToken string `json:"clientRequestToken"`
	InputDataConfig    struct {
		S3InputDataConfig *s3Config `json:"s3InputDataConfig"`
	} `json:"inputDataConfig"`
	OutputDataConfig struct {
		S3OutputDataConfig *s3Config `json:"s3OutputDataConfig"`
	} `json:"outputDataConfig"`
	TimeoutDurationInHours *int   `json:"timeoutDurationInHours"`
	ModelInvocationType    string `json:"modelInvocationType"`
}

func (b *BatchHandler) create(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		b.h.fail(w, err)
		return
	}
	var req createJobReq
	if err := json.Unmarshal(body, &req); err != nil {
		b.h.fail(w, badf("The request body is not valid JSON."))
		return
	}
	id := req.ModelID
	if _, rest, ok := strings.Cut(id, ":foundation-model/"); ok {
		id = rest
	}
	switch {
	case len(req.JobName) < 1 || len(req.JobName) > 63:
		err = badf("jobName must be 1 to 63 characters.")
	case req.RoleArn == "":
		err = badf("roleArn is required.")
	case req.InputDataConfig.S3InputDataConfig == nil || !strings.HasPrefix(req.InputDataConfig.S3InputDataConfig.S3Uri, "s3://"):
		err = badf("inputDataConfig.s3InputDataConfig.s3Uri must be an s3:// URI.")
	case req.OutputDataConfig.S3OutputDataConfig == nil || !strings.HasPrefix(req.OutputDataConfig.S3OutputDataConfig.S3Uri, "s3://"):
		err = badf("outputDataConfig.s3OutputDataConfig.s3Uri must be an s3:// URI.")
	case req.TimeoutDurationInHours != nil && (*req.TimeoutDurationInHours < 24 || *req.TimeoutDurationInHours > 168):
		err = badf("timeoutDurationInHours must be between 24 and 168.")
	case req.ModelInvocationType != "" && req.ModelInvocationType != "InvokeModel":
		err = badf("modelInvocationType %s is not supported; use InvokeModel.", req.ModelInvocationType)
	}
	if err != nil {
		b.h.fail(w, err)
		return
	}
	if err := b.batchModel(id); err != nil {
		b.h.fail(w, err)
		return
	}
	hours := 24
	if req.TimeoutDurationInHours != nil {
		hours = *req.TimeoutDurationInHours
	}
	jobID := genai.NewJobID()
	j := &catalog.ModelJob{ID: jobID, Kind: BatchKind, Name: req.JobName, Arn: b.arn(jobID), ModelID: id,
		RoleArn: req.RoleArn, ClientRequestToken: req.ClientRequestToken,
		InputURI: req.InputDataConfig.S3InputDataConfig.S3Uri, OutputURI: req.OutputDataConfig.S3OutputDataConfig.S3Uri,
		TimeoutHours: hours}
	if err := b.batches.Submit(r.Context(), j); err != nil {
		b.h.fail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", map[string]string{"jobArn": j.Arn})
}

// batchModel checks a job's modelId: a foundation model runs; an imported
// model is refused as on demand (only a provisioned throughput serves it);
// a provisioned throughput is refused, as Bedrock does not run batch
// inference on one.
func (b *BatchHandler) batchModel(id string) error {
	if strings.Contains(id, ":provisioned-model/") {
		return badf("%s", genai.BatchProvisionedMessage)
	}
	if _, ok := b.h.svc.Model(id); ok {
		return nil
	}
	if err := b.h.svc.OnDemandError(id); errors.Is(err, genai.ErrOnDemandCustom) {
		return err
	}
	return badf("The provided model identifier is invalid.")
}

// jobOf resolves {jobIdentifier}: a job ARN or id.
func (b *BatchHandler) jobOf(r *http.Request) (*catalog.ModelJob, error) {
	id := r.PathValue("jobIdentifier")
	if i := strings.LastIndex(id, "/"); i >= 0 {
		id = id[i+1:]
	}
	j, err := b.batches.Get(r.Context(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, &apierr.Error{Kind: apierr.NotFound, Code: "ResourceNotFoundException", Message: "The specified job was not found."}
	}
	if err != nil || j.Kind != BatchKind {
		return nil, &apierr.Error{Kind: apierr.NotFound, Code: "ResourceNotFoundException", Message: "The specified job was not found.", Err: err}
	}
	return j, nil
}

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (b *BatchHandler) view(j *catalog.ModelJob) map[string]any {
	v := map[string]any{
		"jobArn": j.Arn, "jobName": j.Name, "modelId": j.ModelID, "roleArn": j.RoleArn, "status": j.Status,
		"submitTime": iso(j.SubmitTime), "lastModifiedTime": iso(j.LastModifiedTime),
		"inputDataConfig":        map[string]any{"s3InputDataConfig": map[string]string{"s3Uri": j.InputURI, "s3InputFormat": "JSONL"}},
		"outputDataConfig":       map[string]any{"s3OutputDataConfig": map[string]string{"s3Uri": j.OutputURI}},
		"timeoutDurationInHours": j.TimeoutHours,
		"jobExpirationTime":      iso(j.SubmitTime.Add(time.Duration(j.TimeoutHours) * time.Hour)),
		"modelInvocationType":    "InvokeModel",
		"totalRecordCount":       j.Counts.Total, "processedRecordCount": j.Counts.Processed,
		"successRecordCount": j.Counts.Success, "errorRecordCount": j.Counts.Errors,
	}
	if j.ClientRequestToken != "" {
		v["clientRequestToken"] = j.ClientRequestToken
	}
	if j.Message != "" {
		v["message"] = j.Message
	}
	if j.EndTime != nil {
		v["endTime"] = iso(*j.EndTime)
	}
	return v
}

func (b *BatchHandler) get(w http.ResponseWriter, r *http.Request) {
	j, err := b.jobOf(r)
	if err != nil {
		b.h.fail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", b.view(j))
}

// list is ListModelInvocationJobs with statusEquals, nameContains,
// sortOrder (default Descending by submit time) and maxResults/nextToken.
func (b *BatchHandler) list(w http.ResponseWriter, r *http.Request) {
	js, err := b.batches.List(r.Context(), BatchKind)
	if err != nil {
		b.h.fail(w, err)
		return
	}
	q := r.URL.Query()
	var out []map[string]any
	for _, j := range js {
		if s := q.Get("statusEquals"); s != "" && s != j.Status {
			continue
		}
		if s := q.Get("nameContains"); s != "" && !strings.Contains(j.Name, s) {
			continue
		}
		out = append(out, b.view(j))
	}
	if q.Get("sortOrder") != "Ascending" {
		for i, k := 0, len(out)-1; i < k; i, k = i+1, k-1 {
			out[i], out[k] = out[k], out[i]
		}
	}
	start, _ := strconv.Atoi(q.Get("nextToken"))
	start = min(max(start, 0), len(out))
	n := 1000
	if m, err := strconv.Atoi(q.Get("maxResults")); err == nil && m > 0 {
		n = m
	}
	resp := map[string]any{"invocationJobSummaries": append([]map[string]any{}, out[start:min(start+n, len(out))]...)}
	if start+n < len(out) {
		resp["nextToken"] = strconv.Itoa(start + n)
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", resp)
}

func (b *BatchHandler) stop(w http.ResponseWriter, r *http.Request) {
	j, err := b.jobOf(r)
	if err != nil {
		b.h.fail(w, err)
		return
	}
	if _, err := b.batches.Stop(r.Context(), j.ID); err != nil {
		b.h.fail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", map[string]any{})
}
