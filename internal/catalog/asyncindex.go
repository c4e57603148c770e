package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AsyncInference is one accepted asynchronous inference, as the async
// mode indexes it: which endpoint accepted it, where its result goes and
// how it stands. The async mode writes it when it accepts a request and
// again when the request ends, so a status query is answered without
// guessing from object storage (an id never accepted has no record).
type AsyncInference struct {
	Endpoint        string    `json:"Endpoint"`
	InferenceID     string    `json:"InferenceId"`
	Status          string    `json:"Status"` // Pending | Completed | Failed
	OutputLocation  string    `json:"OutputLocation"`
	FailureLocation string    `json:"FailureLocation"`
	FailureReason   string    `json:"FailureReason,omitempty"`
	Accepted        time.Time `json:"Accepted"`
	Updated         time.Time `json:"Updated"`
}

// The async_inferences table is created on first use (see transformSchema
// for why it is not a migration step). Its key is the endpoint's exact
// name and the inference id: async endpoints are invoked by exact name,
// and one id may be used on two endpoints.
const asyncIndexSchema = `CREATE TABLE IF NOT EXISTS async_inferences (
	endpoint     TEXT NOT NULL,
	inference_id TEXT NOT NULL,
	status       TEXT NOT NULL,
	updated_ms   INTEGER NOT NULL,
	doc          TEXT NOT NULL,
	PRIMARY KEY (endpoint, inference_id)
);
CREATE INDEX IF NOT EXISTS async_inferences_updated ON async_inferences(updated_ms);`

// InitAsyncInferences creates the async-inference index table if it does
// not exist. Call it once at start-up, before the other AsyncInference
// methods.
func (s *Store) InitAsyncInferences(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, asyncIndexSchema); err != nil {
		return fmt.Errorf("create async_inferences table: %w", err)
	}
	return nil
}

// PutAsyncInference creates or replaces the record of (a.Endpoint,
// a.InferenceID).
func (s *Store) PutAsyncInference(ctx context.Context, a *AsyncInference) error {
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("put async inference %q: encode: %w", a.InferenceID, err)
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO async_inferences (endpoint, inference_id, status, updated_ms, doc) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (endpoint, inference_id) DO UPDATE SET status = excluded.status, updated_ms = excluded.updated_ms, doc = excluded.doc`,
		a.Endpoint, a.InferenceID, a.Status, a.Updated.UnixMilli(), string(doc))
	if err != nil {
		return fmt.Errorf("put async inference %q of %s: %w", a.InferenceID, a.Endpoint, err)
	}
	return nil
}

// GetAsyncInference returns the record of an inference; ErrNotFound if
// the endpoint never accepted that id (or its record was pruned).
func (s *Store) GetAsyncInference(ctx context.Context, endpoint, id string) (*AsyncInference, error) {
	a, err := getDoc[AsyncInference](ctx, s.db,
		`SELECT doc FROM async_inferences WHERE endpoint = ? AND inference_id = ?`, endpoint, id)
	if err != nil {
		return nil, fmt.Errorf("async inference %q of %s: %w", id, endpoint, err)
	}
	return a, nil
}

// DeleteAsyncInference removes a record; a missing one is not an error.
func (s *Store) DeleteAsyncInference(ctx context.Context, endpoint, id string) error {
	if _, err := s.db.ExecContext(ctx,
		`DELETE FROM async_inferences WHERE endpoint = ? AND inference_id = ?`, endpoint, id); err != nil {
		return fmt.Errorf("delete async inference %q of %s: %w", id, endpoint, err)
	}
	return nil
}

// PruneAsyncInferences deletes the records of finished inferences (not
// Pending) last updated before cutoff, and returns how many went.
func (s *Store) PruneAsyncInferences(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx,
		`DELETE FROM async_inferences WHERE status <> 'Pending' AND updated_ms < ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune async inferences: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
