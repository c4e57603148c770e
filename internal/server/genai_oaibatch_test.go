package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	btypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/inferbox/inferbox/internal/config"
)

const oaiModel = "meta.stories260k"

func oaiClient(url string) openai.Client {
	return openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("anysecret"), option.WithMaxRetries(0))
}

// chatLine is a batch input line for /v1/chat/completions.
func chatLine(id, prompt string, maxTokens int) string {
	b, _ := json.Marshal(map[string]any{"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
		"body": map[string]any{"model": oaiModel, "temperature": 0, "max_completion_tokens": maxTokens,
			"messages": []map[string]string{{"role": "user", "content": prompt}}}})
	return string(b)
}

func uploadBatch(t *testing.T, c openai.Client, name, body string) *openai.FileObject {
	t.Helper()
	f, err := c.Files.New(context.Background(), openai.FileNewParams{
		File: openai.File(strings.NewReader(body), name, "application/jsonl"), Purpose: openai.FilePurposeBatch})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return f
}

func newBatch(t *testing.T, c openai.Client, fileID string) *openai.Batch {
	t.Helper()
	b, err := c.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: fileID,
		Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h,
		Metadata: shared.Metadata{"purpose": "test"}, OutputExpiresAfter: openai.BatchNewParamsOutputExpiresAfter{Seconds: 86400}})
	if err != nil {
		t.Fatalf("create batch: %v", err)
	}
	return b
}

func waitBatch(t *testing.T, c openai.Client, id string, within time.Duration, cond func(*openai.Batch) bool) *openai.Batch {
	t.Helper()
	var got *openai.Batch
	waitFor(t, within, "batch "+id, func() (bool, string) {
		b, err := c.Batches.Get(context.Background(), id)
		if err != nil {
			return false, err.Error()
		}
		got = b
		return cond(b), fmt.Sprintf("%s %+v", b.Status, b.RequestCounts)
	})
	return got
}

func statusIs(s openai.BatchStatus) func(*openai.Batch) bool {
	return func(b *openai.Batch) bool { return b.Status == s }
}

func fileText(t *testing.T, c openai.Client, id string) string {
	t.Helper()
	resp, err := c.Files.Content(context.Background(), id)
	if err != nil {
		t.Fatalf("content of %s: %v", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type oaiOutLine struct {
	ID       string  `json:"id"`
	CustomID *string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func outLines(t *testing.T, text string) []oaiOutLine {
	t.Helper()
	var out []oaiOutLine
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l oaiOutLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// expectOAIError checks an openai-go error's status, param and code.
func expectOAIError(t *testing.T, what string, err error, status int, param, code string) {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: got %v, want an API error", what, err)
		return
	}
	if e.StatusCode != status || e.Param != param || (code != "" && e.Code != code) || e.Type != "invalid_request_error" || e.Message == "" {
		t.Errorf("%s: status %d param %q code %q type %q message %q; want %d %q %q", what, e.StatusCode, e.Param, e.Code, e.Type, e.Message, status, param, code)
	}
}

func TestGenAIOpenAIBatch(t *testing.T) {
	_, url, data, stop := startGenAI(t, func(cfg *config.Config) {
		cfg.Auth.AccessKeys["AKIDOTHER"] = "othersecret"
	})
	ctx := context.Background()
	c := oaiClient(url)

	// Ten chat requests, a malformed line, an unknown model and a line for
	// another endpoint.
	var lines []string
	for i := range 10 {
		lines = append(lines, chatLine(fmt.Sprintf("req-%d", i), []string{"Once upon a time", "The cat", "Lily"}[i%3], 5+i))
	}
	lines = append(lines, `{"custom_id":"broken", this is not json`,
		`{"custom_id":"nomodel","method":"POST","url":"/v1/chat/completions","body":{"model":"no.such.model","messages":[{"role":"user","content":"hi"}]}}`,
		`{"custom_id":"wrongurl","method":"POST","url":"/v1/completions","body":{"model":"`+oaiModel+`","prompt":"hi"}}`)
	in := uploadBatch(t, c, "requests.jsonl", strings.Join(lines, "\n")+"\n")
	if !strings.HasPrefix(in.ID, "file-") || in.Object != "file" || in.Purpose != "batch" || in.Filename != "requests.jsonl" ||
		in.Bytes != int64(len(strings.Join(lines, "\n"))+1) || !strings.Contains(in.RawJSON(), `"status":"processed"`) || in.CreatedAt == 0 {
		t.Errorf("file object %s", in.RawJSON())
	}

	b := newBatch(t, c, in.ID)
	if !strings.HasPrefix(b.ID, "batch_") || b.Object != "batch" || b.InputFileID != in.ID || b.CompletionWindow != "24h" ||
		b.Endpoint != "/v1/chat/completions" || b.Metadata["purpose"] != "test" || b.ExpiresAt != b.CreatedAt+24*3600 {
		t.Errorf("batch object %s", b.RawJSON())
	}
	done := waitBatch(t, c, b.ID, 60*time.Second, statusIs(openai.BatchStatusCompleted))
	if rc := done.RequestCounts; rc.Total != 13 || rc.Completed != 10 || rc.Failed != 3 {
		t.Errorf("request counts %+v", rc)
	}
	if u := done.Usage; u.OutputTokens != 95 || u.InputTokens <= 0 || u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Errorf("usage %+v: want the 10 requests' 5+6+…+14 = 95 output tokens", u)
	}
	if done.OutputFileID == "" || done.ErrorFileID == "" || done.CompletedAt == 0 || done.InProgressAt == 0 || done.FailedAt != 0 {
		t.Errorf("finished batch %s", done.RawJSON())
	}

	t.Run("output equals interactive", func(t *testing.T) {
		seen := map[string]int{}
		for _, l := range outLines(t, fileText(t, c, done.OutputFileID)) {
			if l.CustomID == nil || l.Response == nil || l.Error != nil || !strings.HasPrefix(l.ID, "batch_req_") || l.Response.RequestID == "" {
				t.Errorf("output line %+v", l)
				continue
			}
			id := *l.CustomID
			seen[id]++
			if l.Response.StatusCode != 200 {
				t.Errorf("%s: status %d", id, l.Response.StatusCode)
			}
			var got openai.ChatCompletion
			if err := json.Unmarshal(l.Response.Body, &got); err != nil || len(got.Choices) != 1 {
				t.Errorf("%s: body %s: %v", id, l.Response.Body, err)
				continue
			}
			var i int
			fmt.Sscanf(id, "req-%d", &i)
			want, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: oaiModel, Temperature: openai.Float(0),
				MaxCompletionTokens: openai.Int(int64(5 + i)),
				Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]string{"Once upon a time", "The cat", "Lily"}[i%3])}})
			if err != nil {
				t.Fatal(err)
			}
			if got.Choices[0].Message.Content != want.Choices[0].Message.Content || got.Usage.CompletionTokens != int64(5+i) ||
				got.Object != "chat.completion" || got.Model != oaiModel {
				t.Errorf("%s: batch %q (%d tokens), interactive %q", id, got.Choices[0].Message.Content, got.Usage.CompletionTokens, want.Choices[0].Message.Content)
			}
		}
		for i := range 10 {
			if id := fmt.Sprintf("req-%d", i); seen[id] != 1 {
				t.Errorf("%s appears %d times in the output", id, seen[id])
			}
		}
		if len(seen) != 10 {
			t.Errorf("output has %d custom_ids: %v", len(seen), seen)
		}
	})

	t.Run("error file", func(t *testing.T) {
		byID := map[string]oaiOutLine{}
		ls := outLines(t, fileText(t, c, done.ErrorFileID))
		for _, l := range ls {
			id := "<none>"
			if l.CustomID != nil {
				id = *l.CustomID
			}
			byID[id] = l
		}
		if len(ls) != 3 || len(byID) != 3 {
			t.Fatalf("error file has %d lines: %+v", len(ls), byID)
		}
		if l := byID["<none>"]; l.Error == nil || l.Error.Code != "invalid_json" || l.Response != nil {
			t.Errorf("malformed line: %+v", l)
		}
		if l := byID["nomodel"]; l.Error == nil || l.Error.Code != "model_not_found" || l.Response == nil || l.Response.StatusCode != 404 {
			t.Errorf("unknown model line: %+v", l)
		}
		if l := byID["wrongurl"]; l.Error == nil || l.Error.Code != "mismatched_url" || l.Response != nil {
			t.Errorf("wrong url line: %+v", l)
		}
	})

	t.Run("files", func(t *testing.T) {
		out, err := c.Files.Get(ctx, done.OutputFileID)
		if err != nil || out.Purpose != "batch_output" || out.Bytes == 0 || out.ExpiresAt != out.CreatedAt+86400 {
			t.Fatalf("output file %v %v (output_expires_after: 1 day)", out, err)
		}
		page, err := c.Files.List(ctx, openai.FileListParams{Purpose: openai.String("batch")})
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != in.ID {
			t.Errorf("batch files: %v %v", page, err)
		}
		var all []string
		iter := c.Files.ListAutoPaging(ctx, openai.FileListParams{Limit: openai.Int(1), Order: openai.FileListParamsOrderAsc})
		for iter.Next() {
			all = append(all, iter.Current().ID)
		}
		if iter.Err() != nil || len(all) != 3 || all[0] != in.ID {
			t.Errorf("files ascending one per page: %v %v", all, iter.Err())
		}
		_, err = c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader("{}\n"), "x.jsonl", "application/jsonl"), Purpose: openai.FilePurposeFineTune})
		expectOAIError(t, "purpose fine-tune", err, 400, "purpose", "")
		_, err = c.Files.Get(ctx, "file-nosuch")
		expectOAIError(t, "unknown file", err, 404, "id", "")
	})

	t.Run("bad batches", func(t *testing.T) {
		params := func(file string, ep openai.BatchNewParamsEndpoint, window openai.BatchNewParamsCompletionWindow) openai.BatchNewParams {
			return openai.BatchNewParams{InputFileID: file, Endpoint: ep, CompletionWindow: window}
		}
		_, err := c.Batches.New(ctx, params("file-nosuch", openai.BatchNewParamsEndpointV1ChatCompletions, "24h"))
		expectOAIError(t, "unknown file", err, 400, "input_file_id", "")
		_, err = c.Batches.New(ctx, params(done.OutputFileID, openai.BatchNewParamsEndpointV1ChatCompletions, "24h"))
		expectOAIError(t, "output file as input", err, 400, "input_file_id", "")
		_, err = c.Batches.New(ctx, params(in.ID, openai.BatchNewParamsEndpointV1Embeddings, "24h"))
		expectOAIError(t, "embeddings", err, 400, "endpoint", "")
		_, err = c.Batches.New(ctx, params(in.ID, openai.BatchNewParamsEndpointV1ChatCompletions, "48h"))
		expectOAIError(t, "48h window", err, 400, "completion_window", "")
		_, err = c.Batches.Get(ctx, "batch_nosuch")
		expectOAIError(t, "unknown batch", err, 404, "id", "")
		_, err = c.Batches.Cancel(ctx, b.ID)
		expectOAIError(t, "cancel a completed batch", err, 409, "", "")

		dup := uploadBatch(t, c, "dup.jsonl", chatLine("same", "Lily", 3)+"\n"+chatLine("same", "The cat", 3)+"\n")
		failed := waitBatch(t, c, newBatch(t, c, dup.ID).ID, 30*time.Second, statusIs(openai.BatchStatusFailed))
		if len(failed.Errors.Data) != 1 || failed.Errors.Data[0].Code != "duplicate_custom_id" || failed.Errors.Data[0].Line != 2 ||
			failed.Errors.Data[0].Param != "custom_id" || failed.FailedAt == 0 || failed.OutputFileID != "" {
			t.Errorf("duplicate custom_id: %s", failed.RawJSON())
		}
	})

	t.Run("cancel", func(t *testing.T) {
		var big []string
		for i := range 200 {
			big = append(big, chatLine(fmt.Sprintf("big-%d", i), "Once upon a time", 400))
		}
		f := uploadBatch(t, c, "big.jsonl", strings.Join(big, "\n")+"\n")
		b := newBatch(t, c, f.ID)
		waitBatch(t, c, b.ID, 60*time.Second, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 1 })
		got, err := c.Batches.Cancel(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != openai.BatchStatusCancelling && got.Status != openai.BatchStatusCancelled {
			t.Errorf("cancel answered %s", got.Status)
		}
		got = waitBatch(t, c, b.ID, 60*time.Second, statusIs(openai.BatchStatusCancelled))
		n := got.RequestCounts.Completed
		if n < 1 || n >= 200 || got.CancelledAt == 0 || got.OutputFileID == "" {
			t.Fatalf("cancelled batch %s", got.RawJSON())
		}
		if ls := outLines(t, fileText(t, c, got.OutputFileID)); int64(len(ls)) != n {
			t.Errorf("partial output has %d lines, request_counts.completed %d", len(ls), n)
		}
	})

	t.Run("list batches", func(t *testing.T) {
		var ids []string
		iter := c.Batches.ListAutoPaging(ctx, openai.BatchListParams{Limit: openai.Int(1)})
		for iter.Next() {
			ids = append(ids, iter.Current().ID)
		}
		if iter.Err() != nil || len(ids) != 3 || ids[2] != b.ID {
			t.Errorf("batches newest first, one per page: %v %v", ids, iter.Err())
		}
		page, err := c.Batches.List(ctx, openai.BatchListParams{Limit: openai.Int(2)})
		if err != nil || len(page.Data) != 2 || !page.HasMore {
			t.Errorf("first page of 2: %v %v", page, err)
		}
	})

	t.Run("delete file", func(t *testing.T) {
		del, err := c.Files.Delete(ctx, done.ErrorFileID)
		if err != nil || !del.Deleted || del.ID != done.ErrorFileID || del.Object != "file" {
			t.Fatalf("delete: %v %v", del, err)
		}
		_, err = c.Files.Content(ctx, done.ErrorFileID)
		expectOAIError(t, "content of a deleted file", err, 404, "id", "")
	})

	t.Run("too large", func(t *testing.T) {
		// Declared larger than the limit: refused before the body is read.
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer anysecret\r\n"+
			"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n--b\r\n", 300<<20)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"code":"file_too_large"`) {
			t.Errorf("too large: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		if in.ExpiresAt != in.CreatedAt+30*24*3600 {
			t.Errorf("batch input expires_at %d, want created_at + 30 days", in.ExpiresAt)
		}
		f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(chatLine("x", "hi", 1)+"\n"), "short.jsonl", "application/jsonl"),
			Purpose: openai.FilePurposeBatch, ExpiresAfter: openai.FileNewParamsExpiresAfter{Seconds: 7200}})
		if err != nil || f.ExpiresAt != f.CreatedAt+7200 {
			t.Errorf("expires_after 7200 s: %v, expires_at %d created_at %d", err, f.ExpiresAt, f.CreatedAt)
		}
	})

	t.Run("other key", func(t *testing.T) {
		// Files and batches belong to the key that made them.
		other := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("othersecret"), option.WithMaxRetries(0))
		var e *openai.Error
		if _, err := other.Files.Get(ctx, in.ID); !errors.As(err, &e) || e.StatusCode != 404 {
			t.Errorf("another key's file: %v, want 404", err)
		}
		if _, err := other.Batches.Get(ctx, b.ID); !errors.As(err, &e) || e.StatusCode != 404 {
			t.Errorf("another key's batch: %v, want 404", err)
		}
		if _, err := other.Batches.New(ctx, openai.BatchNewParams{InputFileID: in.ID,
			Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h}); !errors.As(err, &e) || e.StatusCode != 400 {
			t.Errorf("batch on another key's file: %v, want 400", err)
		}
		fs, err := other.Files.List(ctx, openai.FileListParams{})
		if err != nil || len(fs.Data) != 0 {
			t.Errorf("another key's file list: %v, %d files", err, len(fs.Data))
		}
		bs, err := other.Batches.List(ctx, openai.BatchListParams{})
		if err != nil || len(bs.Data) != 0 {
			t.Errorf("another key's batch list: %v, %d batches", err, len(bs.Data))
		}
		if got, err := c.Files.Get(ctx, in.ID); err != nil || got.ID != in.ID {
			t.Errorf("owner's file: %v", err)
		}
	})

	t.Run("auth", func(t *testing.T) {
		bad := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
		_, err := bad.Batches.Get(ctx, b.ID)
		var e *openai.Error
		if !errors.As(err, &e) || e.StatusCode != 401 {
			t.Errorf("wrong key: %v", err)
		}
	})

	stop()
	var rows int
	for _, inv := range readLedger(t, data) {
		if inv.Mode == "bedrock-batch" && inv.Resource == oaiModel && inv.Variant == "openai" && inv.Caller == "AKIDANY" {
			rows++
		}
	}
	if rows < 11 {
		t.Errorf("ledger: %d openai batch rows billed to AKIDANY, want at least 11", rows)
	}
}

// countBatchRows counts successful batch generations in a stopped server's
// ledger, and those that started after since.
func countBatchRows(t *testing.T, data, variant string, since time.Time) (all, after int) {
	t.Helper()
	for _, inv := range readLedger(t, data) {
		if inv.Mode == "bedrock-batch" && inv.Variant == variant && inv.Status == 200 {
			all++
			if inv.Time.After(since) {
				after++
			}
		}
	}
	return all, after
}

// A batch running when the server stops resumes at the next start without
// running its finished requests again: every request is generated once.
func TestGenAIOpenAIBatchResume(t *testing.T) {
	data := t.TempDir()
	mutate := storiesOn(t, data, true)
	_, url, stop := start(t, mutate)
	c := oaiClient(url)
	const n = 60
	var lines []string
	for i := range n {
		lines = append(lines, chatLine(fmt.Sprintf("r%02d", i), "Once upon a time", 200))
	}
	f := uploadBatch(t, c, "resume.jsonl", strings.Join(lines, "\n")+"\n")
	b := newBatch(t, c, f.ID)
	before := waitBatch(t, c, b.ID, 60*time.Second, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 8 })
	stop()
	restart := time.Now()

	_, url, stop = start(t, mutate)
	c = oaiClient(url)
	done := waitBatch(t, c, b.ID, 120*time.Second, statusIs(openai.BatchStatusCompleted))
	if rc := done.RequestCounts; rc.Total != n || rc.Completed != n || rc.Failed != 0 {
		t.Errorf("resumed batch counts %+v", rc)
	}
	seen := map[string]int{}
	for _, l := range outLines(t, fileText(t, c, done.OutputFileID)) {
		if l.CustomID != nil && l.Response != nil && l.Response.StatusCode == 200 {
			seen[*l.CustomID]++
		}
	}
	for i := range n {
		if id := fmt.Sprintf("r%02d", i); seen[id] != 1 {
			t.Errorf("%s appears %d times", id, seen[id])
		}
	}
	stop()
	all, after := countBatchRows(t, data, "openai", restart)
	t.Logf("%d of %d requests done before the restart, %d generated after it, %d in all", before.RequestCounts.Completed, n, after, all)
	if all != n || after == 0 || after > n-int(before.RequestCounts.Completed) {
		t.Errorf("ledger: %d generations (%d after the restart, %d done before it); want %d, each once", all, after, before.RequestCounts.Completed, n)
	}
}

// The same for a Bedrock model invocation job.
func TestGenAIBatchResumeBedrock(t *testing.T) {
	data := t.TempDir()
	mutate := storiesOn(t, data, false)
	c, _, stop := start(t, mutate)
	br := bedrockClient(c)
	const n = 60
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, `{"recordId":"R%010d","modelInput":{"prompt":"Once upon a time","temperature":0,"max_gen_len":200}}`+"\n", i)
	}
	putBatchInput(t, c, "batch", "in/resume.jsonl", in.String())
	arn := createJob(t, br, "resume", "s3://batch/in/resume.jsonl", "s3://batch/out/")
	var processed int64
	waitFor(t, 60*time.Second, "8 records processed", func() (bool, string) {
		got := waitJob(t, br, arn, 10*time.Second, btypes.ModelInvocationJobStatusInProgress, btypes.ModelInvocationJobStatusCompleted)
		processed = aws.ToInt64(got.ProcessedRecordCount)
		return processed >= 8, fmt.Sprint(processed)
	})
	stop()
	restart := time.Now()

	c, _, stop = start(t, mutate)
	br = bedrockClient(c)
	got := waitJob(t, br, arn, 120*time.Second, btypes.ModelInvocationJobStatusCompleted)
	if aws.ToInt64(got.SuccessRecordCount) != n || aws.ToInt64(got.ProcessedRecordCount) != n {
		t.Errorf("resumed job: %d processed, %d succeeded", aws.ToInt64(got.ProcessedRecordCount), aws.ToInt64(got.SuccessRecordCount))
	}
	jobID := arn[strings.LastIndex(arn, "/")+1:]
	out := getObjectText(t, c, "batch", "out/"+jobID+"/resume.jsonl.out")
	for i := range n {
		if k := strings.Count(out, fmt.Sprintf(`"recordId":"R%010d"`, i)); k != 1 {
			t.Errorf("record %d appears %d times", i, k)
		}
	}
	stop()
	all, after := countBatchRows(t, data, "bedrock", restart)
	t.Logf("%d of %d records done before the restart, %d generated after it, %d in all", processed, n, after, all)
	if all != n || after == 0 || int64(after) > n-processed {
		t.Errorf("ledger: %d generations (%d after the restart, %d done before it); want %d, each once", all, after, processed, n)
	}
}
