package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Model invocation job statuses (Bedrock's ModelInvocationJobStatus enum).
// OpenAI batches keep these and map them onto OpenAI's statuses.
const (
	ModelJobSubmitted          = "Submitted"
	ModelJobValidating         = "Validating"
	ModelJobScheduled          = "Scheduled"
	ModelJobInProgress         = "InProgress"
	ModelJobCompleted          = "Completed"
	ModelJobPartiallyCompleted = "PartiallyCompleted"
	ModelJobFailed             = "Failed"
	ModelJobStopping           = "Stopping"
	ModelJobStopped            = "Stopped"
	ModelJobExpired            = "Expired"
)

// ModelJob is a foundation-model batch job (a Bedrock model invocation job
// or an OpenAI batch): which model runs which input file, where outputs
// go, and its progress. Kind names the record format ("bedrock", "openai").
type ModelJob struct {
	ID                 string          `json:"id"`
	Kind               string          `json:"kind"`
	Name               string          `json:"name"`
	Arn                string          `json:"arn,omitempty"`
	ModelID            string          `json:"modelId"`
	RoleArn            string          `json:"roleArn,omitempty"`
	ClientRequestToken string          `json:"clientRequestToken,omitempty"`
	Status             string          `json:"status"`
	Message            string          `json:"message,omitempty"`
	InputURI           string          `json:"inputUri"`
	OutputURI          string          `json:"outputUri"`
	TimeoutHours       int             `json:"timeoutHours"`
	SubmitTime         time.Time       `json:"submitTime"`
	LastModifiedTime   time.Time       `json:"lastModifiedTime"`
	StartTime          *time.Time      `json:"startTime,omitempty"`
	EndTime            *time.Time      `json:"endTime,omitempty"`
	Counts             ModelJobCounts  `json:"counts"`
	Extra              json.RawMessage `json:"extra,omitempty"` // the format's own fields
}

// ModelJobCounts are a job's record and token counts.
type ModelJobCounts struct {
	Total        int `json:"total"`
	Processed    int `json:"processed"`
	Success      int `json:"success"`
	Errors       int `json:"errors"`
	InputTokens  int `json:"inputTokens"`
	OutputTokens int `json:"outputTokens"`
}

// Terminal reports whether status is final.
func ModelJobTerminal(status string) bool {
	switch status {
	case ModelJobCompleted, ModelJobPartiallyCompleted, ModelJobFailed, ModelJobStopped, ModelJobExpired:
		return true
	}
	return false
}

// model_jobs is created with IF NOT EXISTS (see transformSchema for why).
const modelJobsSchema = `CREATE TABLE IF NOT EXISTS model_jobs (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	created_ms INTEGER NOT NULL,
	status     TEXT NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS model_jobs_created ON model_jobs(kind, created_ms);`

// InitModelJobs creates the model-jobs table if it does not exist.
func (s *Store) InitModelJobs(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, modelJobsSchema); err != nil {
		return fmt.Errorf("create model_jobs table: %w", err)
	}
	return nil
}

// CreateModelJob stores a new job; ErrExists if its id exists.
func (s *Store) CreateModelJob(ctx context.Context, j *ModelJob) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("create model job %q: encode: %w", j.ID, err)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO model_jobs (id, kind, created_ms, status, doc) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (id) DO NOTHING`,
		j.ID, j.Kind, j.SubmitTime.UnixMilli(), j.Status, string(doc))
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrExists
		}
	}
	if err != nil {
		return fmt.Errorf("create model job %q: %w", j.ID, err)
	}
	return nil
}

// GetModelJob returns the job with id; ErrNotFound if none.
func (s *Store) GetModelJob(ctx context.Context, id string) (*ModelJob, error) {
	j, err := getDoc[ModelJob](ctx, s.db, `SELECT doc FROM model_jobs WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("get model job %q: %w", id, err)
	}
	return j, nil
}

// ListModelJobs returns the jobs of kind ("" for all), oldest first.
func (s *Store) ListModelJobs(ctx context.Context, kind string) ([]*ModelJob, error) {
	js, err := queryDocs[ModelJob](ctx, s.db,
		`SELECT doc FROM model_jobs WHERE ? = '' OR kind = ? ORDER BY created_ms, rowid`, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("list model jobs: %w", err)
	}
	return js, nil
}

// PutModelJob replaces the stored job of j's id; ErrNotFound if none.
func (s *Store) PutModelJob(ctx context.Context, j *ModelJob) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("put model job %q: encode: %w", j.ID, err)
	}
	if err := execOne(ctx, s.db, `UPDATE model_jobs SET status = ?, doc = ? WHERE id = ?`, j.Status, string(doc), j.ID); err != nil {
		return fmt.Errorf("put model job %q: %w", j.ID, err)
	}
	return nil
}
