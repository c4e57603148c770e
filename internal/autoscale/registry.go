package autoscale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
)

// Registry is the Application Auto Scaling service for endpoint variants:
// it validates scalable targets and policies, keeps them in the catalog
// (so they survive restarts) and hands them to the Loop that applies them.
type Registry struct {
	store  *catalog.Store
	loop   *Loop
	check  func(ctx context.Context, resourceID string) error
	region string
	acct   string
	mu     sync.Mutex // serialises changes so catalog and loop agree
}

// NewRegistry returns a registry; check reports whether a resource id
// names an existing endpoint variant. The loop records its activities and
// cooldowns in the same store (its journal), so call it before the loop
// runs.
func NewRegistry(store *catalog.Store, loop *Loop, check func(ctx context.Context, resourceID string) error, region, account string) *Registry {
	loop.SetJournal(store)
	return &Registry{store: store, loop: loop, check: check, region: region, acct: account}
}

// Restore creates the scaling-state tables if needed and loads every
// stored target and policy into the loop, with each target's past
// activities and cooldown state. Call it before the loop runs.
func (r *Registry) Restore(ctx context.Context) error {
	if err := r.store.InitScalingState(ctx); err != nil {
		return err
	}
	ts, err := r.store.ListScalableTargets(ctx, ServiceNamespace)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if err := r.loop.SetTarget(*t); err != nil {
			return fmt.Errorf("restore scalable target %s: %w", t.ResourceId, err)
		}
		if err := r.restoreState(ctx, t); err != nil {
			return err
		}
	}
	ps, err := r.store.ListScalingPolicies(ctx, ServiceNamespace)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := r.loop.SetPolicy(*p); err != nil {
			return fmt.Errorf("restore scaling policy %s: %w", p.PolicyName, err)
		}
	}
	return nil
}

// restoreState hands the loop a target's recorded activities and cooldowns.
func (r *Registry) restoreState(ctx context.Context, t *catalog.ScalableTarget) error {
	acts, err := r.store.ListScalingActivities(ctx, t.ServiceNamespace, t.ResourceId, t.ScalableDimension)
	if err != nil {
		return err
	}
	cd, err := r.store.GetScalingCooldown(ctx, t.ServiceNamespace, t.ResourceId, t.ScalableDimension)
	if errors.Is(err, catalog.ErrNotFound) {
		cd, err = nil, nil
	}
	if err != nil {
		return err
	}
	list := make([]Activity, len(acts))
	for i, a := range acts {
		list[i] = *a
	}
	if err := r.loop.Restore(t.ResourceId, list, cd); err != nil {
		return fmt.Errorf("restore scaling state of %s: %w", t.ResourceId, err)
	}
	return nil
}

func validation(err error) error {
	if errors.Is(err, ErrInvalid) {
		return apierr.Validationf("%s", err.Error())
	}
	return err
}

func (r *Registry) notFound(ns, id, dim string) error {
	return apierr.New(apierr.NotFound, "No scalable target registered for service namespace: %s, resource ID: %s, scalable dimension: %s", ns, id, dim)
}

// RegisterScalableTarget creates or updates a target. For a new target
// MinCapacity and MaxCapacity are required; an update may change either.
func (r *Registry) RegisterScalableTarget(ctx context.Context, t catalog.ScalableTarget, minSet, maxSet bool) (*catalog.ScalableTarget, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := validateKey(t.ServiceNamespace, t.ResourceId, t.ScalableDimension); err != nil {
		return nil, validation(err)
	}
	old, err := r.store.GetScalableTarget(ctx, t.ServiceNamespace, t.ResourceId, t.ScalableDimension)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		if !minSet || !maxSet {
			return nil, apierr.Validationf("MinCapacity and MaxCapacity are required when registering a new scalable target.")
		}
		if err := r.check(ctx, t.ResourceId); err != nil {
			return nil, err
		}
		t.CreationTime = catalog.Now()
		t.ScalableTargetARN = fmt.Sprintf("arn:aws:application-autoscaling:%s:%s:scalable-target/%s", r.region, r.acct, newID())
	case err != nil:
		return nil, err
	default:
		if !minSet {
			t.MinCapacity = old.MinCapacity
		}
		if !maxSet {
			t.MaxCapacity = old.MaxCapacity
		}
		if t.RoleARN == "" {
			t.RoleARN = old.RoleARN
		}
		if t.SuspendedState == nil {
			t.SuspendedState = old.SuspendedState
		}
		t.CreationTime = old.CreationTime
		t.ScalableTargetARN = old.ScalableTargetARN
	}
	if t.RoleARN == "" {
		t.RoleARN = fmt.Sprintf("arn:aws:iam::%s:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint", r.acct)
	}
	if err := ValidateTarget(t); err != nil {
		return nil, validation(err)
	}
	if err := r.store.PutScalableTarget(ctx, &t); err != nil {
		return nil, err
	}
	if err := r.loop.SetTarget(t); err != nil {
		return nil, validation(err)
	}
	return &t, nil
}

// DescribeScalableTargets lists targets, optionally only those with the given ids.
func (r *Registry) DescribeScalableTargets(ctx context.Context, ns string, ids []string, dim string) ([]*catalog.ScalableTarget, error) {
	all, err := r.store.ListScalableTargets(ctx, ns)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []*catalog.ScalableTarget
	for _, t := range all {
		if (len(ids) == 0 || want[t.ResourceId]) && (dim == "" || dim == t.ScalableDimension) {
			out = append(out, t)
		}
	}
	return out, nil
}

// DeregisterScalableTarget removes a target and its policies.
func (r *Registry) DeregisterScalableTarget(ctx context.Context, ns, id, dim string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.store.DeleteScalableTarget(ctx, ns, id, dim); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return r.notFound(ns, id, dim)
		}
		return err
	}
	if err := r.loop.RemoveTarget(ns, id, dim); err != nil && !errors.Is(err, ErrNoTarget) {
		return err
	}
	return nil
}

// PutScalingPolicy creates or replaces a policy on a registered target.
func (r *Registry) PutScalingPolicy(ctx context.Context, p catalog.ScalingPolicy) (*catalog.ScalingPolicy, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ValidatePolicy(p); err != nil {
		return nil, validation(err)
	}
	if _, err := r.store.GetScalableTarget(ctx, p.ServiceNamespace, p.ResourceId, p.ScalableDimension); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, r.notFound(p.ServiceNamespace, p.ResourceId, p.ScalableDimension)
		}
		return nil, err
	}
	old, err := r.store.GetScalingPolicy(ctx, p.ServiceNamespace, p.ResourceId, p.ScalableDimension, p.PolicyName)
	if err == nil {
		p.PolicyARN, p.CreationTime = old.PolicyARN, old.CreationTime
	} else {
		p.CreationTime = catalog.Now()
		p.PolicyARN = fmt.Sprintf("arn:aws:autoscaling:%s:%s:scalingPolicy:%s:resource/%s/%s:policyName/%s", r.region, r.acct, newID(), p.ServiceNamespace, p.ResourceId, p.PolicyName)
	}
	if err := r.store.PutScalingPolicy(ctx, &p); err != nil {
		return nil, err
	}
	if err := r.loop.SetPolicy(p); err != nil {
		return nil, validation(err)
	}
	return &p, nil
}

// DescribeScalingPolicies lists policies matching the filters.
func (r *Registry) DescribeScalingPolicies(ctx context.Context, ns string, names []string, id, dim string) ([]*catalog.ScalingPolicy, error) {
	all, err := r.store.ListScalingPolicies(ctx, ns)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []*catalog.ScalingPolicy
	for _, p := range all {
		if (len(names) == 0 || want[p.PolicyName]) && (id == "" || id == p.ResourceId) && (dim == "" || dim == p.ScalableDimension) {
			out = append(out, p)
		}
	}
	return out, nil
}

// DeleteScalingPolicy removes a policy.
func (r *Registry) DeleteScalingPolicy(ctx context.Context, ns, name, id, dim string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.store.DeleteScalingPolicy(ctx, ns, id, dim, name); err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return apierr.New(apierr.NotFound, "No scaling policy found for service namespace: %s, resource ID: %s, scalable dimension: %s, policy name: %s", ns, id, dim, name)
		}
		return err
	}
	if err := r.loop.RemovePolicy(ns, id, dim, name); err != nil && !errors.Is(err, ErrNoPolicy) && !errors.Is(err, ErrNoTarget) {
		return err
	}
	return nil
}

// DescribeScalingActivities returns recent activities, newest first.
func (r *Registry) DescribeScalingActivities(ctx context.Context, ns, id string) ([]Activity, error) {
	if id != "" {
		return r.loop.Activities(id), nil
	}
	ts, err := r.store.ListScalableTargets(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []Activity
	for _, t := range ts {
		out = append(out, r.loop.Activities(t.ResourceId)...)
	}
	return out, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
