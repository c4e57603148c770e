package meter

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// The ledger's schema has its own version row (meter_schema), since the
// database's user_version belongs to the catalog. Timestamps and latencies
// are integers in microseconds (Unix epoch for timestamps).
var migrations = []string{
	`CREATE TABLE meter_instances (
		id            INTEGER PRIMARY KEY,
		instance_id   TEXT NOT NULL,
		mode          TEXT NOT NULL,
		resource      TEXT NOT NULL,
		variant       TEXT NOT NULL,
		instance_type TEXT NOT NULL,
		start_us      INTEGER NOT NULL,
		end_us        INTEGER,
		last_seen_us  INTEGER NOT NULL,
		recovered     INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX meter_instances_start ON meter_instances(start_us);
	CREATE INDEX meter_instances_open ON meter_instances(instance_id) WHERE end_us IS NULL;
	CREATE TABLE meter_invocations (
		id               INTEGER PRIMARY KEY,
		time_us          INTEGER NOT NULL,
		mode             TEXT NOT NULL,
		resource         TEXT NOT NULL,
		variant          TEXT NOT NULL,
		instance_type    TEXT NOT NULL,
		caller           TEXT NOT NULL,
		model_latency_us INTEGER NOT NULL,
		total_latency_us INTEGER NOT NULL,
		status           INTEGER NOT NULL,
		bytes_in         INTEGER NOT NULL,
		bytes_out        INTEGER NOT NULL,
		input_tokens     INTEGER NOT NULL,
		output_tokens    INTEGER NOT NULL
	);
	CREATE INDEX meter_invocations_time ON meter_invocations(time_us);`,
	// 2: serverless compute is priced by duration × memory size.
	`ALTER TABLE meter_invocations ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 0;`,
	// 3: invocations are written a flush at a time (see batch.go);
	// meter_invocations keeps the rows older versions wrote.
	`CREATE TABLE meter_invocation_batches (
		id          INTEGER PRIMARY KEY,
		min_time_us INTEGER NOT NULL,
		max_time_us INTEGER NOT NULL,
		count       INTEGER NOT NULL,
		data        BLOB NOT NULL
	);
	CREATE INDEX meter_invocation_batches_time ON meter_invocation_batches(max_time_us, min_time_us);`,
}

func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS meter_schema (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema table: %w", err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM meter_schema`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO meter_schema (version) VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("ledger schema version %d is newer than this binary knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meter_schema SET version = ?`, len(migrations)); err != nil {
		return err
	}
	return tx.Commit()
}

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Invocations returns the written invocations with from <= Time < to,
// oldest first; a zero to has no upper bound. Buffered rows are not
// included: Flush first to see them.
func (l *Ledger) Invocations(ctx context.Context, from, to time.Time) ([]Invocation, error) {
	upper := int64(1<<63 - 1)
	if !to.IsZero() {
		upper = to.UnixMicro()
	}
	rows, err := l.db.QueryContext(ctx,
		`SELECT time_us, mode, resource, variant, instance_type, caller, model_latency_us, total_latency_us,
			status, bytes_in, bytes_out, input_tokens, output_tokens, memory_mb
		 FROM meter_invocations WHERE time_us >= ? AND time_us < ? ORDER BY time_us, id`,
		from.UnixMicro(), upper)
	if err != nil {
		return nil, fmt.Errorf("meter: read invocations: %w", err)
	}
	defer rows.Close()
	var out []Invocation
	for rows.Next() {
		var v Invocation
		var t, ml, tl int64
		if err := rows.Scan(&t, &v.Mode, &v.Resource, &v.Variant, &v.InstanceType, &v.Caller, &ml, &tl,
			&v.Status, &v.BytesIn, &v.BytesOut, &v.InputTokens, &v.OutputTokens, &v.MemoryMB); err != nil {
			return nil, fmt.Errorf("meter: read invocations: %w", err)
		}
		v.Time = fromMicro(t)
		v.ModelLatency = time.Duration(ml) * time.Microsecond
		v.TotalLatency = time.Duration(tl) * time.Microsecond
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meter: read invocations: %w", err)
	}
	rows.Close() // one connection: close before the next query
	out, err = l.batchedInvocations(ctx, out, from.UnixMicro(), upper)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Invocation) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// batchedInvocations appends the invocations of the batches that overlap
// [from, to), in write order.
func (l *Ledger) batchedInvocations(ctx context.Context, out []Invocation, from, to int64) ([]Invocation, error) {
	rows, err := l.db.QueryContext(ctx,
		`SELECT data FROM meter_invocation_batches WHERE max_time_us >= ? AND min_time_us < ? ORDER BY id`, from, to)
	if err != nil {
		return nil, fmt.Errorf("meter: read invocations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("meter: read invocations: %w", err)
		}
		if out, err = decodeBatch(out, data, from, to); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// Instances returns the written instance lifetimes that overlap [from,
// to), oldest start first; a zero to has no upper bound. End is zero for
// instances still running.
func (l *Ledger) Instances(ctx context.Context, from, to time.Time) ([]InstanceRecord, error) {
	upper := int64(1<<63 - 1)
	if !to.IsZero() {
		upper = to.UnixMicro()
	}
	rows, err := l.db.QueryContext(ctx,
		`SELECT instance_id, mode, resource, variant, instance_type, start_us, end_us, last_seen_us, recovered
		 FROM meter_instances WHERE start_us < ? AND (end_us IS NULL OR end_us > ?) ORDER BY start_us, id`,
		upper, from.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("meter: read instances: %w", err)
	}
	defer rows.Close()
	var out []InstanceRecord
	for rows.Next() {
		var r InstanceRecord
		var start, seen int64
		var end sql.NullInt64
		if err := rows.Scan(&r.InstanceID, &r.Mode, &r.Resource, &r.Variant, &r.InstanceType,
			&start, &end, &seen, &r.Recovered); err != nil {
			return nil, fmt.Errorf("meter: read instances: %w", err)
		}
		r.Start, r.LastSeen = fromMicro(start), fromMicro(seen)
		if end.Valid {
			r.End = fromMicro(end.Int64)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("meter: read instances: %w", err)
	}
	return out, nil
}
