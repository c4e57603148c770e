package catalog

import (
	"context"
	"encoding/json"
	"fmt"
)

// Transform job statuses (SageMaker's TransformJobStatus enum).
const (
	TransformInProgress = "InProgress"
	TransformCompleted  = "Completed"
	TransformFailed     = "Failed"
	TransformStopping   = "Stopping"
	TransformStopped    = "Stopped"
)

// S3DataSource is a transform job's input location.
type S3DataSource struct {
	S3DataType string `json:"S3DataType"` // S3Prefix | ManifestFile
	S3Uri      string `json:"S3Uri"`
}

// TransformDataSource wraps S3DataSource, as the wire does.
type TransformDataSource struct {
	S3DataSource *S3DataSource `json:"S3DataSource,omitempty"`
}

// TransformInput says what a transform job reads and how it splits it.
type TransformInput struct {
	DataSource      TransformDataSource `json:"DataSource"`
	ContentType     string              `json:"ContentType,omitempty"`
	CompressionType string              `json:"CompressionType,omitempty"` // None | Gzip
	SplitType       string              `json:"SplitType,omitempty"`       // None | Line | RecordIO
}

// TransformOutput says where a transform job writes and how it assembles.
type TransformOutput struct {
	S3OutputPath string `json:"S3OutputPath"`
	Accept       string `json:"Accept,omitempty"`
	AssembleWith string `json:"AssembleWith,omitempty"` // None | Line
	KmsKeyId     string `json:"KmsKeyId,omitempty"`
}

// TransformResources are a transform job's instances.
type TransformResources struct {
	InstanceType   string `json:"InstanceType"`
	InstanceCount  int    `json:"InstanceCount"`
	VolumeKmsKeyId string `json:"VolumeKmsKeyId,omitempty"`
}

// ModelClientConfig bounds each invocation a transform job makes.
type ModelClientConfig struct {
	InvocationsTimeoutInSeconds int `json:"InvocationsTimeoutInSeconds,omitempty"`
	InvocationsMaxRetries       int `json:"InvocationsMaxRetries"`
}

// DataProcessing filters a transform job's records and joins outputs to inputs.
type DataProcessing struct {
	InputFilter  string `json:"InputFilter,omitempty"`
	OutputFilter string `json:"OutputFilter,omitempty"`
	JoinSource   string `json:"JoinSource,omitempty"` // None | Input
}

// TransformJob is a SageMaker batch transform job as DescribeTransformJob
// returns it. MaxConcurrentTransforms and MaxPayloadInMB are pointers so
// that "unset" (the container's /execution-parameters or the default
// decides) differs from an explicit value.
type TransformJob struct {
	TransformJobName        string             `json:"TransformJobName"`
	TransformJobArn         string             `json:"TransformJobArn"`
	TransformJobStatus      string             `json:"TransformJobStatus"`
	FailureReason           string             `json:"FailureReason,omitempty"`
	ModelName               string             `json:"ModelName"`
	MaxConcurrentTransforms *int               `json:"MaxConcurrentTransforms,omitempty"`
	ModelClientConfig       *ModelClientConfig `json:"ModelClientConfig,omitempty"`
	MaxPayloadInMB          *int               `json:"MaxPayloadInMB,omitempty"`
	BatchStrategy           string             `json:"BatchStrategy,omitempty"`
	Environment             map[string]string  `json:"Environment,omitempty"`
	TransformInput          TransformInput     `json:"TransformInput"`
	TransformOutput         TransformOutput    `json:"TransformOutput"`
	TransformResources      TransformResources `json:"TransformResources"`
	DataProcessing          *DataProcessing    `json:"DataProcessing,omitempty"`
	DataCaptureConfig       json.RawMessage    `json:"DataCaptureConfig,omitempty"`
	ExperimentConfig        json.RawMessage    `json:"ExperimentConfig,omitempty"`
	CreationTime            Time               `json:"CreationTime"`
	TransformStartTime      Time               `json:"TransformStartTime,omitzero"`
	TransformEndTime        Time               `json:"TransformEndTime,omitzero"`
	Tags                    []Tag              `json:"Tags,omitempty"`
	// Progress is inferbox's addition to DescribeTransformJob (SageMaker
	// has no such member; SDKs ignore it): how far the job has got.
	Progress *TransformProgress `json:"Progress,omitempty"`
}

// TransformProgress is how far a transform job has got. Bytes are bytes of
// the input objects as stored (compressed bytes for Gzip inputs); an
// input finished before a restart counts whole. EstimatedSecondsRemaining
// is absent until the current run has read something.
type TransformProgress struct {
	RecordsProcessed          int64  `json:"RecordsProcessed"`
	BytesProcessed            int64  `json:"BytesProcessed"`
	BytesTotal                int64  `json:"BytesTotal"`
	ObjectsCompleted          int    `json:"ObjectsCompleted"`
	ObjectsTotal              int    `json:"ObjectsTotal"`
	EstimatedSecondsRemaining *int64 `json:"EstimatedSecondsRemaining,omitempty"`
}

// The transform_jobs table is created on first use with IF NOT EXISTS
// rather than as a step in migrations: other modes add their own steps in
// parallel, and a table that needs no data migration can stay out of that
// ordered list.
const transformSchema = `CREATE TABLE IF NOT EXISTS transform_jobs (
	name_key   TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_ms INTEGER NOT NULL,
	status     TEXT NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transform_jobs_created ON transform_jobs(created_ms);`

// InitTransformJobs creates the transform-jobs table if it does not exist.
// Call it once at start-up, before the other TransformJob methods.
func (s *Store) InitTransformJobs(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, transformSchema); err != nil {
		return fmt.Errorf("create transform_jobs table: %w", err)
	}
	return nil
}

// CreateTransformJob stores a new job; ErrExists if a job of that name, in
// any case, exists.
func (s *Store) CreateTransformJob(ctx context.Context, j *TransformJob) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("create transform job %q: encode: %w", j.TransformJobName, err)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO transform_jobs (name_key, name, created_ms, status, doc) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (name_key) DO NOTHING`,
		nameKey(j.TransformJobName), j.TransformJobName, j.CreationTime.UnixMilli(), j.TransformJobStatus, string(doc))
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrExists
		}
	}
	if err != nil {
		return fmt.Errorf("create transform job %q: %w", j.TransformJobName, err)
	}
	return nil
}

// GetTransformJob returns the job named name in any case; ErrNotFound if none.
func (s *Store) GetTransformJob(ctx context.Context, name string) (*TransformJob, error) {
	j, err := getDoc[TransformJob](ctx, s.db, `SELECT doc FROM transform_jobs WHERE name_key = ?`, nameKey(name))
	if err != nil {
		return nil, fmt.Errorf("get transform job %q: %w", name, err)
	}
	return j, nil
}

// ListTransformJobs returns every job, oldest first.
func (s *Store) ListTransformJobs(ctx context.Context) ([]*TransformJob, error) {
	js, err := queryDocs[TransformJob](ctx, s.db, `SELECT doc FROM transform_jobs ORDER BY created_ms, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list transform jobs: %w", err)
	}
	return js, nil
}

// PutTransformJob replaces the stored job of j's name; ErrNotFound if none.
func (s *Store) PutTransformJob(ctx context.Context, j *TransformJob) error {
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("put transform job %q: encode: %w", j.TransformJobName, err)
	}
	err = execOne(ctx, s.db, `UPDATE transform_jobs SET status = ?, doc = ? WHERE name_key = ?`,
		j.TransformJobStatus, string(doc), nameKey(j.TransformJobName))
	if err != nil {
		return fmt.Errorf("put transform job %q: %w", j.TransformJobName, err)
	}
	return nil
}
