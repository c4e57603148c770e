// Package catalog is inferbox's metadata store: SageMaker models, endpoint
// configs and endpoints, and Application Auto Scaling scalable targets and
// scaling policies, kept in an embedded SQLite database so that state
// survives a restart.
//
// The driver is modernc.org/sqlite, a pure-Go translation of SQLite. The
// CGO-free choice is deliberate: inferbox cross-compiles to every platform
// from one machine and builds without a C toolchain. The cost is speed
// (roughly half of the C library's), which metadata does not notice.
//
// Each record is stored as its JSON (the records marshal as the wire shape)
// next to indexed key columns. Names of models, endpoint configs and
// endpoints are unique regardless of case, as in SageMaker, and keep the
// case they were created with; Get finds a record by any case of its name
// and returns the stored record, so callers compare case where it matters
// (InvokeEndpoint does).
//
// catalog owns the database file and its schema (the user_version pragma);
// other packages may add their own tables through DB (the usage ledger
// does). It imports only the standard library and the SQLite driver: never
// a mode service, a protocol adapter or the pool.
package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Sentinel errors callers branch on; returned errors wrap them with the
// resource's kind and name.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// busyTimeout is how long a statement waits for another process's write
// lock before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is the metadata store. Its methods are safe for concurrent use.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database at path, in WAL journal
// mode with a busy timeout and foreign keys on, and brings its schema up to
// date.
//
// The handle has a single connection: SQLite admits one writer at a time
// anyway, and queueing in database/sql is fair and sleep-free where
// SQLite's busy handler retries on a timer. The busy timeout still covers
// another process (an inferbox CLI, say) holding the lock. A consequence
// for users of DB: close a Rows before running the next statement.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return s, nil
}

// DB returns the underlying handle, shared with the usage ledger. It has a
// single connection: close each Rows before the next statement.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database. Nothing may use the store or DB afterwards.
func (s *Store) Close() error { return s.db.Close() }

// migrations are applied in order; migrations[i] brings user_version from
// i to i+1. Append only: never edit a released step.
var migrations = []string{
	`CREATE TABLE models (
		name_key   TEXT PRIMARY KEY,
		name       TEXT NOT NULL,
		created_ms INTEGER NOT NULL,
		doc        TEXT NOT NULL
	);
	CREATE INDEX models_created ON models(created_ms);
	CREATE TABLE endpoint_configs (
		name_key   TEXT PRIMARY KEY,
		name       TEXT NOT NULL,
		created_ms INTEGER NOT NULL,
		doc        TEXT NOT NULL
	);
	CREATE INDEX endpoint_configs_created ON endpoint_configs(created_ms);
	CREATE TABLE endpoints (
		name_key   TEXT PRIMARY KEY,
		name       TEXT NOT NULL,
		created_ms INTEGER NOT NULL,
		status     TEXT NOT NULL,
		doc        TEXT NOT NULL
	);
	CREATE INDEX endpoints_created ON endpoints(created_ms);
	CREATE INDEX endpoints_status ON endpoints(status);
	CREATE TABLE scalable_targets (
		namespace   TEXT NOT NULL,
		resource_id TEXT NOT NULL,
		dimension   TEXT NOT NULL,
		created_ms  INTEGER NOT NULL,
		doc         TEXT NOT NULL,
		PRIMARY KEY (namespace, resource_id, dimension)
	);
	CREATE INDEX scalable_targets_created ON scalable_targets(created_ms);
	CREATE TABLE scaling_policies (
		namespace   TEXT NOT NULL,
		resource_id TEXT NOT NULL,
		dimension   TEXT NOT NULL,
		policy_name TEXT NOT NULL,
		created_ms  INTEGER NOT NULL,
		doc         TEXT NOT NULL,
		PRIMARY KEY (namespace, resource_id, dimension, policy_name),
		FOREIGN KEY (namespace, resource_id, dimension)
			REFERENCES scalable_targets (namespace, resource_id, dimension)
			ON DELETE CASCADE
	);
	CREATE INDEX scaling_policies_created ON scaling_policies(created_ms);`,
}

// migrate applies the migrations the database has not seen, each in its
// own transaction together with its user_version bump.
func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this binary knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		// PRAGMA takes no bound parameters; i+1 is an int we own.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
	}
	return nil
}

// nameKey is the uniqueness key of a SageMaker name.
func nameKey(name string) string { return strings.ToLower(name) }

// decode unmarshals one stored document.
func decode[T any](doc string) (*T, error) {
	v := new(T)
	if err := json.Unmarshal([]byte(doc), v); err != nil {
		return nil, fmt.Errorf("decode stored record: %w", err)
	}
	return v, nil
}

// queryDocs runs a query whose single column is a stored document and
// decodes every row. The rows are read to the end before decoding returns,
// so the single connection is free again.
func queryDocs[T any](ctx context.Context, db *sql.DB, query string, args ...any) ([]*T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		v, err := decode[T](doc)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// getDoc reads one stored document; sql.ErrNoRows becomes ErrNotFound.
func getDoc[T any](ctx context.Context, db *sql.DB, query string, args ...any) (*T, error) {
	var doc string
	err := db.QueryRowContext(ctx, query, args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decode[T](doc)
}

// execOne runs a statement that must touch exactly one row; none is
// ErrNotFound.
func execOne(ctx context.Context, db *sql.DB, query string, args ...any) error {
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// insertNamed inserts a document into one of the name-keyed tables;
// a name that exists in any case is ErrExists.
func insertNamed(ctx context.Context, db *sql.DB, table, name string, created Time, v any) error {
	if name == "" {
		return errors.New("empty name")
	}
	doc, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	res, err := db.ExecContext(ctx,
		`INSERT INTO `+table+` (name_key, name, created_ms, doc) VALUES (?, ?, ?, ?)
		 ON CONFLICT (name_key) DO NOTHING`,
		nameKey(name), name, created.UnixMilli(), string(doc))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

// CreateModel stores a new model; ErrExists if a model of that name, in
// any case, exists.
func (s *Store) CreateModel(ctx context.Context, m *Model) error {
	if err := insertNamed(ctx, s.db, "models", m.ModelName, m.CreationTime, m); err != nil {
		return fmt.Errorf("create model %q: %w", m.ModelName, err)
	}
	return nil
}

// GetModel returns the model named name in any case; ErrNotFound if none.
func (s *Store) GetModel(ctx context.Context, name string) (*Model, error) {
	m, err := getDoc[Model](ctx, s.db, `SELECT doc FROM models WHERE name_key = ?`, nameKey(name))
	if err != nil {
		return nil, fmt.Errorf("get model %q: %w", name, err)
	}
	return m, nil
}

// ListModels returns every model, oldest first.
func (s *Store) ListModels(ctx context.Context) ([]*Model, error) {
	ms, err := queryDocs[Model](ctx, s.db, `SELECT doc FROM models ORDER BY created_ms, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	return ms, nil
}

// DeleteModel deletes the model named name in any case; ErrNotFound if none.
func (s *Store) DeleteModel(ctx context.Context, name string) error {
	if err := execOne(ctx, s.db, `DELETE FROM models WHERE name_key = ?`, nameKey(name)); err != nil {
		return fmt.Errorf("delete model %q: %w", name, err)
	}
	return nil
}

// CreateEndpointConfig stores a new endpoint config; ErrExists if one of
// that name, in any case, exists.
func (s *Store) CreateEndpointConfig(ctx context.Context, c *EndpointConfig) error {
	if err := insertNamed(ctx, s.db, "endpoint_configs", c.EndpointConfigName, c.CreationTime, c); err != nil {
		return fmt.Errorf("create endpoint config %q: %w", c.EndpointConfigName, err)
	}
	return nil
}

// GetEndpointConfig returns the endpoint config named name in any case;
// ErrNotFound if none.
func (s *Store) GetEndpointConfig(ctx context.Context, name string) (*EndpointConfig, error) {
	c, err := getDoc[EndpointConfig](ctx, s.db, `SELECT doc FROM endpoint_configs WHERE name_key = ?`, nameKey(name))
	if err != nil {
		return nil, fmt.Errorf("get endpoint config %q: %w", name, err)
	}
	return c, nil
}

// ListEndpointConfigs returns every endpoint config, oldest first.
func (s *Store) ListEndpointConfigs(ctx context.Context) ([]*EndpointConfig, error) {
	cs, err := queryDocs[EndpointConfig](ctx, s.db, `SELECT doc FROM endpoint_configs ORDER BY created_ms, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list endpoint configs: %w", err)
	}
	return cs, nil
}

// DeleteEndpointConfig deletes the endpoint config named name in any case;
// ErrNotFound if none.
func (s *Store) DeleteEndpointConfig(ctx context.Context, name string) error {
	if err := execOne(ctx, s.db, `DELETE FROM endpoint_configs WHERE name_key = ?`, nameKey(name)); err != nil {
		return fmt.Errorf("delete endpoint config %q: %w", name, err)
	}
	return nil
}

// CreateEndpoint stores a new endpoint; ErrExists if one of that name, in
// any case, exists.
func (s *Store) CreateEndpoint(ctx context.Context, e *Endpoint) error {
	if e.EndpointName == "" {
		return fmt.Errorf("create endpoint: empty name")
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("create endpoint %q: encode: %w", e.EndpointName, err)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO endpoints (name_key, name, created_ms, status, doc) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (name_key) DO NOTHING`,
		nameKey(e.EndpointName), e.EndpointName, e.CreationTime.UnixMilli(), e.EndpointStatus, string(doc))
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrExists
		}
	}
	if err != nil {
		return fmt.Errorf("create endpoint %q: %w", e.EndpointName, err)
	}
	return nil
}

// GetEndpoint returns the endpoint named name in any case; ErrNotFound if
// none.
func (s *Store) GetEndpoint(ctx context.Context, name string) (*Endpoint, error) {
	e, err := getDoc[Endpoint](ctx, s.db, `SELECT doc FROM endpoints WHERE name_key = ?`, nameKey(name))
	if err != nil {
		return nil, fmt.Errorf("get endpoint %q: %w", name, err)
	}
	return e, nil
}

// ListEndpoints returns every endpoint, oldest first.
func (s *Store) ListEndpoints(ctx context.Context) ([]*Endpoint, error) {
	es, err := queryDocs[Endpoint](ctx, s.db, `SELECT doc FROM endpoints ORDER BY created_ms, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return es, nil
}

// PutEndpoint replaces the stored endpoint of e's name (in any case) with
// e; ErrNotFound if there is none. The stored name keeps the case e has.
func (s *Store) PutEndpoint(ctx context.Context, e *Endpoint) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("put endpoint %q: encode: %w", e.EndpointName, err)
	}
	err = execOne(ctx, s.db,
		`UPDATE endpoints SET name = ?, created_ms = ?, status = ?, doc = ? WHERE name_key = ?`,
		e.EndpointName, e.CreationTime.UnixMilli(), e.EndpointStatus, string(doc), nameKey(e.EndpointName))
	if err != nil {
		return fmt.Errorf("put endpoint %q: %w", e.EndpointName, err)
	}
	return nil
}

// DeleteEndpoint deletes the endpoint named name in any case; ErrNotFound
// if none.
func (s *Store) DeleteEndpoint(ctx context.Context, name string) error {
	if err := execOne(ctx, s.db, `DELETE FROM endpoints WHERE name_key = ?`, nameKey(name)); err != nil {
		return fmt.Errorf("delete endpoint %q: %w", name, err)
	}
	return nil
}
