package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ProvisionedThroughput is a Bedrock provisioned throughput as stored: a
// number of model units of dedicated capacity for one model. The genai
// service owns its lifecycle; the catalog only keeps it across restarts.
type ProvisionedThroughput struct {
	ID          string    `json:"id"` // 12 lower-case letters and digits
	Name        string    `json:"name"`
	ModelID     string    `json:"modelId"`
	ModelUnits  int       `json:"modelUnits"`
	Commitment  string    `json:"commitmentDuration,omitempty"` // "", OneMonth, SixMonths
	Expires     time.Time `json:"commitmentExpirationTime,omitzero"`
	Status      string    `json:"status"` // Creating, InService, Updating, Failed
	Failure     string    `json:"failureMessage,omitempty"`
	Created     time.Time `json:"creationTime"`
	LastChanged time.Time `json:"lastModifiedTime"`
}

const provisionedSchema = `CREATE TABLE IF NOT EXISTS provisioned_throughputs (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE COLLATE NOCASE,
	created_ms INTEGER NOT NULL,
	doc TEXT NOT NULL
)`

func (s *Store) provisionedTable(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, provisionedSchema); err != nil {
		return fmt.Errorf("provisioned throughput table: %w", err)
	}
	return nil
}

// CreateProvisioned stores a new provisioned throughput; a name already
// in use (in any case) is ErrExists.
func (s *Store) CreateProvisioned(ctx context.Context, p *ProvisionedThroughput) error {
	if err := s.provisionedTable(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode provisioned throughput %s: %w", p.Name, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM provisioned_throughputs WHERE name = ? OR id = ?`, p.Name, p.ID).Scan(&n); err != nil {
		return fmt.Errorf("create provisioned throughput %s: %w", p.Name, err)
	}
	if n > 0 {
		return fmt.Errorf("create provisioned throughput %s: %w", p.Name, ErrExists)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO provisioned_throughputs (id, name, created_ms, doc) VALUES (?, ?, ?, ?)`,
		p.ID, p.Name, p.Created.UnixMilli(), string(b)); err != nil {
		return fmt.Errorf("create provisioned throughput %s: %w", p.Name, err)
	}
	return nil
}

// PutProvisioned replaces the stored record with p's id (ErrNotFound if
// there is none; ErrExists if p's name belongs to another).
func (s *Store) PutProvisioned(ctx context.Context, p *ProvisionedThroughput) error {
	if err := s.provisionedTable(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode provisioned throughput %s: %w", p.Name, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM provisioned_throughputs WHERE name = ? AND id <> ?`, p.Name, p.ID).Scan(&n); err != nil {
		return fmt.Errorf("update provisioned throughput %s: %w", p.ID, err)
	}
	if n > 0 {
		return fmt.Errorf("update provisioned throughput %s: name %s: %w", p.ID, p.Name, ErrExists)
	}
	r, err := s.db.ExecContext(ctx, `UPDATE provisioned_throughputs SET name = ?, doc = ? WHERE id = ?`, p.Name, string(b), p.ID)
	if err != nil {
		return fmt.Errorf("update provisioned throughput %s: %w", p.ID, err)
	}
	if k, _ := r.RowsAffected(); k == 0 {
		return fmt.Errorf("update provisioned throughput %s: %w", p.ID, ErrNotFound)
	}
	return nil
}

// DeleteProvisioned removes the record with the id.
func (s *Store) DeleteProvisioned(ctx context.Context, id string) error {
	if err := s.provisionedTable(ctx); err != nil {
		return err
	}
	r, err := s.db.ExecContext(ctx, `DELETE FROM provisioned_throughputs WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete provisioned throughput %s: %w", id, err)
	}
	if k, _ := r.RowsAffected(); k == 0 {
		return fmt.Errorf("delete provisioned throughput %s: %w", id, ErrNotFound)
	}
	return nil
}

// ListProvisioned returns every stored provisioned throughput, oldest
// first.
func (s *Store) ListProvisioned(ctx context.Context) ([]ProvisionedThroughput, error) {
	if err := s.provisionedTable(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT doc FROM provisioned_throughputs ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("list provisioned throughputs: %w", err)
	}
	defer rows.Close()
	var out []ProvisionedThroughput
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("list provisioned throughputs: %w", err)
		}
		var p ProvisionedThroughput
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return nil, fmt.Errorf("list provisioned throughputs: decode: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("list provisioned throughputs: %w", err)
	}
	return out, nil
}
