package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ScalingActivity is an Application Auto Scaling ScalingActivity, in its
// wire shape: one change (or failed change) the autoscaler made to a
// scalable target.
type ScalingActivity struct {
	ActivityId        string `json:"ActivityId"`
	ServiceNamespace  string `json:"ServiceNamespace"`
	ResourceId        string `json:"ResourceId"`
	ScalableDimension string `json:"ScalableDimension"`
	Description       string `json:"Description"`
	Cause             string `json:"Cause"`
	StartTime         Time   `json:"StartTime"`
	EndTime           Time   `json:"EndTime"`
	StatusCode        string `json:"StatusCode"` // Successful | Failed
	StatusMessage     string `json:"StatusMessage,omitempty"`
	Details           string `json:"Details,omitempty"`
}

// ScalingCooldown is what the autoscaler must remember of a target's last
// changes so that a restart honours their cooldowns.
type ScalingCooldown struct {
	ServiceNamespace     string    `json:"ServiceNamespace"`
	ResourceId           string    `json:"ResourceId"`
	ScalableDimension    string    `json:"ScalableDimension"`
	LastScaleOut         time.Time `json:"LastScaleOut"`
	ScaleOutTo           int       `json:"ScaleOutTo"`
	ScaleOutCooldownEnds time.Time `json:"ScaleOutCooldownEnds"`
	LastScaleIn          time.Time `json:"LastScaleIn"`
	ScaleInCooldownEnds  time.Time `json:"ScaleInCooldownEnds"`
}

// The scaling_activities and scaling_cooldowns tables are created on first
// use (see transformSchema for why they are not migration steps). Both
// belong to their scalable target: deregistering it deletes them (ON
// DELETE CASCADE, as for policies). seq orders activities as recorded.
const scalingStateSchema = `CREATE TABLE IF NOT EXISTS scaling_activities (
	seq         INTEGER PRIMARY KEY,
	activity_id TEXT NOT NULL UNIQUE,
	namespace   TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	dimension   TEXT NOT NULL,
	doc         TEXT NOT NULL,
	FOREIGN KEY (namespace, resource_id, dimension)
		REFERENCES scalable_targets (namespace, resource_id, dimension)
		ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS scaling_activities_target ON scaling_activities(namespace, resource_id, dimension, seq);
CREATE TABLE IF NOT EXISTS scaling_cooldowns (
	namespace   TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	dimension   TEXT NOT NULL,
	doc         TEXT NOT NULL,
	PRIMARY KEY (namespace, resource_id, dimension),
	FOREIGN KEY (namespace, resource_id, dimension)
		REFERENCES scalable_targets (namespace, resource_id, dimension)
		ON DELETE CASCADE
);`

// InitScalingState creates the scaling-activity and cooldown tables if
// they do not exist. Call it once at start-up, before the other methods
// of this file.
func (s *Store) InitScalingState(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, scalingStateSchema); err != nil {
		return fmt.Errorf("create scaling state tables: %w", err)
	}
	return nil
}

// AddScalingActivity records an activity of a registered target and keeps
// only that target's newest keep activities (keep ≤ 0: all). The target
// must be registered: ErrNotFound otherwise.
func (s *Store) AddScalingActivity(ctx context.Context, a *ScalingActivity, keep int) error {
	desc := targetDesc(a.ServiceNamespace, a.ResourceId, a.ScalableDimension)
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("add scaling activity of %s: encode: %w", desc, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add scaling activity of %s: %w", desc, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx,
		`INSERT INTO scaling_activities (activity_id, namespace, resource_id, dimension, doc)
		 SELECT ?, ?, ?, ?, ? WHERE EXISTS (
			SELECT 1 FROM scalable_targets WHERE namespace = ? AND resource_id = ? AND dimension = ?)`,
		a.ActivityId, a.ServiceNamespace, a.ResourceId, a.ScalableDimension, string(b),
		a.ServiceNamespace, a.ResourceId, a.ScalableDimension)
	if err != nil {
		return fmt.Errorf("add scaling activity of %s: %w", desc, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("add scaling activity of %s: %w", desc, ErrNotFound)
	}
	if keep > 0 {
		_, err = tx.ExecContext(ctx,
			`DELETE FROM scaling_activities WHERE namespace = ? AND resource_id = ? AND dimension = ? AND seq NOT IN (
				SELECT seq FROM scaling_activities WHERE namespace = ? AND resource_id = ? AND dimension = ? ORDER BY seq DESC LIMIT ?)`,
			a.ServiceNamespace, a.ResourceId, a.ScalableDimension, a.ServiceNamespace, a.ResourceId, a.ScalableDimension, keep)
		if err != nil {
			return fmt.Errorf("trim scaling activities of %s: %w", desc, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add scaling activity of %s: %w", desc, err)
	}
	return nil
}

// ListScalingActivities returns a target's activities, oldest first.
func (s *Store) ListScalingActivities(ctx context.Context, namespace, resourceID, dimension string) ([]*ScalingActivity, error) {
	as, err := queryDocs[ScalingActivity](ctx, s.db,
		`SELECT doc FROM scaling_activities WHERE namespace = ? AND resource_id = ? AND dimension = ? ORDER BY seq`,
		namespace, resourceID, dimension)
	if err != nil {
		return nil, fmt.Errorf("list scaling activities of %s: %w", targetDesc(namespace, resourceID, dimension), err)
	}
	return as, nil
}

// PutScalingCooldown stores a registered target's cooldown state,
// replacing the previous one; ErrNotFound if the target is not registered.
func (s *Store) PutScalingCooldown(ctx context.Context, c *ScalingCooldown) error {
	desc := targetDesc(c.ServiceNamespace, c.ResourceId, c.ScalableDimension)
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("put cooldown of %s: encode: %w", desc, err)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO scaling_cooldowns (namespace, resource_id, dimension, doc)
		 SELECT ?, ?, ?, ? WHERE EXISTS (
			SELECT 1 FROM scalable_targets WHERE namespace = ? AND resource_id = ? AND dimension = ?)
		 ON CONFLICT (namespace, resource_id, dimension) DO UPDATE SET doc = excluded.doc`,
		c.ServiceNamespace, c.ResourceId, c.ScalableDimension, string(b),
		c.ServiceNamespace, c.ResourceId, c.ScalableDimension)
	if err != nil {
		return fmt.Errorf("put cooldown of %s: %w", desc, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("put cooldown of %s: %w", desc, ErrNotFound)
	}
	return nil
}

// GetScalingCooldown returns a target's cooldown state; ErrNotFound if
// it never scaled.
func (s *Store) GetScalingCooldown(ctx context.Context, namespace, resourceID, dimension string) (*ScalingCooldown, error) {
	c, err := getDoc[ScalingCooldown](ctx, s.db,
		`SELECT doc FROM scaling_cooldowns WHERE namespace = ? AND resource_id = ? AND dimension = ?`,
		namespace, resourceID, dimension)
	if err != nil {
		return nil, fmt.Errorf("cooldown of %s: %w", targetDesc(namespace, resourceID, dimension), err)
	}
	return c, nil
}
