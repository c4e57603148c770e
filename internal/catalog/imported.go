package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ImportedModel is a Bedrock imported (custom) model as stored: a GGUF
// file copied into the data directory under its content hash. The genai
// service owns what it means; the catalog only keeps it across restarts.
type ImportedModel struct {
	ID                string    `json:"id"` // 12 lower-case letters and digits
	Name              string    `json:"name"`
	JobID             string    `json:"jobId"`
	JobName           string    `json:"jobName"`
	SourceURI         string    `json:"sourceUri"` // modelDataSource.s3DataSource.s3Uri as given
	Path              string    `json:"path"`      // the content-addressed copy
	SHA256            string    `json:"sha256"`
	SizeBytes         int64     `json:"sizeBytes"`
	Architecture      string    `json:"modelArchitecture"`
	InstructSupported bool      `json:"instructSupported"`
	Created           time.Time `json:"creationTime"`
}

// ModelImportJob is a Bedrock model import job as stored.
type ModelImportJob struct {
	ID                string    `json:"id"`
	Name              string    `json:"jobName"`
	ImportedModelName string    `json:"importedModelName"`
	ImportedModelID   string    `json:"importedModelId,omitempty"` // set when Completed
	RoleArn           string    `json:"roleArn"`
	SourceURI         string    `json:"sourceUri"`
	Status            string    `json:"status"` // InProgress, Completed, Failed
	Failure           string    `json:"failureMessage,omitempty"`
	Created           time.Time `json:"creationTime"`
	LastChanged       time.Time `json:"lastModifiedTime"`
	Ended             time.Time `json:"endTime,omitzero"`
}

// importedSchema is two tables of the same shape: a row per record, its
// name unique in any case, the record as JSON.
var importedSchema = []string{
	`CREATE TABLE IF NOT EXISTS imported_models (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE COLLATE NOCASE,
	created_ms INTEGER NOT NULL,
	doc TEXT NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS model_import_jobs (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE COLLATE NOCASE,
	created_ms INTEGER NOT NULL,
	doc TEXT NOT NULL
)`,
}

// InitImported creates the imported-model and import-job tables.
func (s *Store) InitImported(ctx context.Context) error {
	for _, q := range importedSchema {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("imported model tables: %w", err)
		}
	}
	return nil
}

// CreateImportJob stores a new import job; a job name already in use (in
// any case) is ErrExists.
func (s *Store) CreateImportJob(ctx context.Context, j *ModelImportJob) error {
	return s.createDoc(ctx, "model_import_jobs", "model import job", j.ID, j.Name, j.Created, j)
}

// PutImportJob replaces the stored job with j's id (ErrNotFound if none).
func (s *Store) PutImportJob(ctx context.Context, j *ModelImportJob) error {
	return s.putDoc(ctx, "model_import_jobs", "model import job", j.ID, j)
}

// ListImportJobs returns every import job, oldest first.
func (s *Store) ListImportJobs(ctx context.Context) ([]ModelImportJob, error) {
	return listDocs[ModelImportJob](ctx, s, "model_import_jobs", "model import jobs")
}

// CreateImportedModel stores a new imported model; a name already in use
// (in any case) is ErrExists.
func (s *Store) CreateImportedModel(ctx context.Context, m *ImportedModel) error {
	return s.createDoc(ctx, "imported_models", "imported model", m.ID, m.Name, m.Created, m)
}

// DeleteImportedModel removes the imported model with the id.
func (s *Store) DeleteImportedModel(ctx context.Context, id string) error {
	if err := s.InitImported(ctx); err != nil {
		return err
	}
	r, err := s.db.ExecContext(ctx, `DELETE FROM imported_models WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete imported model %s: %w", id, err)
	}
	if k, _ := r.RowsAffected(); k == 0 {
		return fmt.Errorf("delete imported model %s: %w", id, ErrNotFound)
	}
	return nil
}

// ListImportedModels returns every imported model, oldest first.
func (s *Store) ListImportedModels(ctx context.Context) ([]ImportedModel, error) {
	return listDocs[ImportedModel](ctx, s, "imported_models", "imported models")
}

// createDoc inserts one JSON document row into table (imported_models or
// model_import_jobs), refusing a name or id already present.
func (s *Store) createDoc(ctx context.Context, table, what, id, name string, created time.Time, v any) error {
	if err := s.InitImported(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", what, name, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE name = ? OR id = ?`, name, id).Scan(&n); err != nil {
		return fmt.Errorf("create %s %s: %w", what, name, err)
	}
	if n > 0 {
		return fmt.Errorf("create %s %s: %w", what, name, ErrExists)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO `+table+` (id, name, created_ms, doc) VALUES (?, ?, ?, ?)`,
		id, name, created.UnixMilli(), string(b)); err != nil {
		return fmt.Errorf("create %s %s: %w", what, name, err)
	}
	return nil
}

func (s *Store) putDoc(ctx context.Context, table, what, id string, v any) error {
	if err := s.InitImported(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", what, id, err)
	}
	r, err := s.db.ExecContext(ctx, `UPDATE `+table+` SET doc = ? WHERE id = ?`, string(b), id)
	if err != nil {
		return fmt.Errorf("update %s %s: %w", what, id, err)
	}
	if k, _ := r.RowsAffected(); k == 0 {
		return fmt.Errorf("update %s %s: %w", what, id, ErrNotFound)
	}
	return nil
}

func listDocs[T any](ctx context.Context, s *Store, table, what string) ([]T, error) {
	if err := s.InitImported(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM `+table+` ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		var v T
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			return nil, fmt.Errorf("list %s: decode: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}
