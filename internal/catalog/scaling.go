package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Application Auto Scaling records are keyed exactly (case-sensitively) by
// (ServiceNamespace, ResourceId, ScalableDimension), and policies also by
// PolicyName. A policy belongs to its target: deleting the target deletes
// its policies.

func targetDesc(ns, id, dim string) string {
	return fmt.Sprintf("scalable target (%s, %s, %s)", ns, id, dim)
}

// PutScalableTarget registers t, or updates the registered target of the
// same key. An update keeps the stored CreationTime and writes it back into
// t, so t is the record as stored.
func (s *Store) PutScalableTarget(ctx context.Context, t *ScalableTarget) error {
	desc := targetDesc(t.ServiceNamespace, t.ResourceId, t.ScalableDimension)
	if err := s.putScalableTarget(ctx, t); err != nil {
		return fmt.Errorf("put %s: %w", desc, err)
	}
	return nil
}

func (s *Store) putScalableTarget(ctx context.Context, t *ScalableTarget) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var createdMS int64
	var doc string
	err = tx.QueryRowContext(ctx,
		`SELECT created_ms, doc FROM scalable_targets WHERE namespace = ? AND resource_id = ? AND dimension = ?`,
		t.ServiceNamespace, t.ResourceId, t.ScalableDimension).Scan(&createdMS, &doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		old, err := decode[ScalableTarget](doc)
		if err != nil {
			return err
		}
		t.CreationTime = old.CreationTime
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO scalable_targets (namespace, resource_id, dimension, created_ms, doc) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (namespace, resource_id, dimension) DO UPDATE SET doc = excluded.doc`,
		t.ServiceNamespace, t.ResourceId, t.ScalableDimension, t.CreationTime.UnixMilli(), string(b))
	if err != nil {
		return err
	}
	return tx.Commit()
}

// GetScalableTarget returns the target of that key; ErrNotFound if none.
func (s *Store) GetScalableTarget(ctx context.Context, namespace, resourceID, dimension string) (*ScalableTarget, error) {
	t, err := getDoc[ScalableTarget](ctx, s.db,
		`SELECT doc FROM scalable_targets WHERE namespace = ? AND resource_id = ? AND dimension = ?`,
		namespace, resourceID, dimension)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", targetDesc(namespace, resourceID, dimension), err)
	}
	return t, nil
}

// ListScalableTargets returns the targets of a service namespace, oldest
// first; an empty namespace lists every namespace.
func (s *Store) ListScalableTargets(ctx context.Context, namespace string) ([]*ScalableTarget, error) {
	ts, err := queryDocs[ScalableTarget](ctx, s.db,
		`SELECT doc FROM scalable_targets WHERE ? = '' OR namespace = ? ORDER BY created_ms, rowid`,
		namespace, namespace)
	if err != nil {
		return nil, fmt.Errorf("list scalable targets: %w", err)
	}
	return ts, nil
}

// DeleteScalableTarget deregisters the target of that key and deletes its
// scaling policies; ErrNotFound if none.
func (s *Store) DeleteScalableTarget(ctx context.Context, namespace, resourceID, dimension string) error {
	// The policies go by ON DELETE CASCADE (foreign keys are on).
	err := execOne(ctx, s.db,
		`DELETE FROM scalable_targets WHERE namespace = ? AND resource_id = ? AND dimension = ?`,
		namespace, resourceID, dimension)
	if err != nil {
		return fmt.Errorf("delete %s: %w", targetDesc(namespace, resourceID, dimension), err)
	}
	return nil
}

func policyDesc(ns, id, dim, name string) string {
	return fmt.Sprintf("scaling policy %q of %s", name, targetDesc(ns, id, dim))
}

// PutScalingPolicy stores p, replacing any policy of the same key. Its
// scalable target must be registered: ErrNotFound otherwise (Application
// Auto Scaling's ObjectNotFoundException).
func (s *Store) PutScalingPolicy(ctx context.Context, p *ScalingPolicy) error {
	desc := policyDesc(p.ServiceNamespace, p.ResourceId, p.ScalableDimension, p.PolicyName)
	if p.PolicyName == "" {
		return fmt.Errorf("put %s: empty policy name", desc)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("put %s: encode: %w", desc, err)
	}
	// INSERT ... SELECT inserts nothing when the target is missing, so the
	// check and the write are one statement.
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO scaling_policies (namespace, resource_id, dimension, policy_name, created_ms, doc)
		 SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (
			SELECT 1 FROM scalable_targets WHERE namespace = ? AND resource_id = ? AND dimension = ?)
		 ON CONFLICT (namespace, resource_id, dimension, policy_name)
		 DO UPDATE SET created_ms = excluded.created_ms, doc = excluded.doc`,
		p.ServiceNamespace, p.ResourceId, p.ScalableDimension, p.PolicyName, p.CreationTime.UnixMilli(), string(b),
		p.ServiceNamespace, p.ResourceId, p.ScalableDimension)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = fmt.Errorf("%s: %w", targetDesc(p.ServiceNamespace, p.ResourceId, p.ScalableDimension), ErrNotFound)
		}
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", desc, err)
	}
	return nil
}

// GetScalingPolicy returns the policy of that key; ErrNotFound if none.
func (s *Store) GetScalingPolicy(ctx context.Context, namespace, resourceID, dimension, policyName string) (*ScalingPolicy, error) {
	p, err := getDoc[ScalingPolicy](ctx, s.db,
		`SELECT doc FROM scaling_policies
		 WHERE namespace = ? AND resource_id = ? AND dimension = ? AND policy_name = ?`,
		namespace, resourceID, dimension, policyName)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", policyDesc(namespace, resourceID, dimension, policyName), err)
	}
	return p, nil
}

// ListScalingPolicies returns the policies of a service namespace, oldest
// first; an empty namespace lists every namespace.
func (s *Store) ListScalingPolicies(ctx context.Context, namespace string) ([]*ScalingPolicy, error) {
	ps, err := queryDocs[ScalingPolicy](ctx, s.db,
		`SELECT doc FROM scaling_policies WHERE ? = '' OR namespace = ? ORDER BY created_ms, rowid`,
		namespace, namespace)
	if err != nil {
		return nil, fmt.Errorf("list scaling policies: %w", err)
	}
	return ps, nil
}

// DeleteScalingPolicy deletes the policy of that key; ErrNotFound if none.
func (s *Store) DeleteScalingPolicy(ctx context.Context, namespace, resourceID, dimension, policyName string) error {
	err := execOne(ctx, s.db,
		`DELETE FROM scaling_policies WHERE namespace = ? AND resource_id = ? AND dimension = ? AND policy_name = ?`,
		namespace, resourceID, dimension, policyName)
	if err != nil {
		return fmt.Errorf("delete %s: %w", policyDesc(namespace, resourceID, dimension, policyName), err)
	}
	return nil
}
