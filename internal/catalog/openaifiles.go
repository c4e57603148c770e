package catalog

import (
	"context"
	"encoding/json"
	"fmt"
)

// OpenAIFile is an OpenAI /v1/files object's metadata; its bytes live in
// the object store at URI.
type OpenAIFile struct {
	ID        string `json:"id"`
	Purpose   string `json:"purpose"`
	Filename  string `json:"filename"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"createdAt"` // Unix seconds
	ExpiresAt int64  `json:"expiresAt,omitempty"`
	URI       string `json:"uri"`
	Caller    string `json:"caller,omitempty"` // the access key id that created it
}

// openai_files is created with IF NOT EXISTS (see transformSchema for why).
// seq orders files created in the same second.
const openAIFilesSchema = `CREATE TABLE IF NOT EXISTS openai_files (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	purpose    TEXT NOT NULL,
	doc        TEXT NOT NULL
);`

// InitOpenAIFiles creates the OpenAI files table if it does not exist.
func (s *Store) InitOpenAIFiles(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, openAIFilesSchema); err != nil {
		return fmt.Errorf("create openai_files table: %w", err)
	}
	return nil
}

// CreateOpenAIFile stores a new file's metadata; ErrExists if its id exists.
func (s *Store) CreateOpenAIFile(ctx context.Context, f *OpenAIFile) error {
	doc, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("create openai file %q: encode: %w", f.ID, err)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO openai_files (id, purpose, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		f.ID, f.Purpose, string(doc))
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrExists
		}
	}
	if err != nil {
		return fmt.Errorf("create openai file %q: %w", f.ID, err)
	}
	return nil
}

// GetOpenAIFile returns the file with id; ErrNotFound if none.
func (s *Store) GetOpenAIFile(ctx context.Context, id string) (*OpenAIFile, error) {
	f, err := getDoc[OpenAIFile](ctx, s.db, `SELECT doc FROM openai_files WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("get openai file %q: %w", id, err)
	}
	return f, nil
}

// ListOpenAIFiles returns the files of purpose ("" for all), oldest first.
func (s *Store) ListOpenAIFiles(ctx context.Context, purpose string) ([]*OpenAIFile, error) {
	fs, err := queryDocs[OpenAIFile](ctx, s.db,
		`SELECT doc FROM openai_files WHERE ? = '' OR purpose = ? ORDER BY seq`, purpose, purpose)
	if err != nil {
		return nil, fmt.Errorf("list openai files: %w", err)
	}
	return fs, nil
}

// DeleteOpenAIFile removes the file's metadata; ErrNotFound if none.
func (s *Store) DeleteOpenAIFile(ctx context.Context, id string) error {
	if err := execOne(ctx, s.db, `DELETE FROM openai_files WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete openai file %q: %w", id, err)
	}
	return nil
}
