package hosting

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

// UpdateOptions are UpdateEndpoint's optional members.
type UpdateOptions struct {
	RetainAllVariantProperties bool
	// Excluded lists VariantPropertyTypes not to retain
	// (DesiredInstanceCount, DesiredWeight, DataCaptureConfig).
	Excluded []string
}

// UpdateEndpoint deploys a new endpoint config blue/green: the new
// variants' instances are started and ready before traffic moves to them
// all at once; then the old instances drain and stop. No request fails
// during the switch. If the new fleet cannot start, the endpoint stays on
// its old config, back InService, with a FailureReason saying why.
func (s *Service) UpdateEndpoint(ctx context.Context, name, configName string, opts UpdateOptions) (*catalog.Endpoint, error) {
	if err := checkEndpointName("endpointConfigName", configName); err != nil {
		return nil, err
	}
	cfg, err := s.DescribeEndpointConfig(ctx, configName)
	if err != nil {
		return nil, err
	}
	ep, le, err := s.beginOp(ctx, name, "update", false)
	if err != nil {
		return nil, err
	}
	if err := s.checkConversion(ctx, ep, cfg); err != nil {
		s.endOp(le)
		return nil, err
	}
	states := initialStates(cfg)
	if opts.RetainAllVariantProperties {
		excluded := map[string]bool{}
		for _, e := range opts.Excluded {
			excluded[e] = true
		}
		old := map[string]catalog.VariantState{}
		for _, st := range ep.Variants {
			old[st.VariantName] = st
		}
		for i, st := range states {
			if o, ok := old[st.VariantName]; ok {
				if !excluded["DesiredInstanceCount"] {
					states[i].DesiredInstanceCount = o.DesiredInstanceCount
				}
				if !excluded["DesiredWeight"] {
					states[i].DesiredWeight = o.DesiredWeight
				}
			}
		}
	}
	oldConfig, oldStates := ep.EndpointConfigName, ep.Variants
	if err := s.setStatus(ctx, name, catalog.StatusUpdating, "", nil); err != nil {
		s.endOp(le)
		return nil, err
	}
	s.runOp(le, func(ctx context.Context) {
		green, err := s.buildVariants(ctx, name, cfg, states, nil)
		if err != nil {
			s.closeVariants(ctx, green)
			s.log.Error("endpoint update failed; staying on the old configuration", "endpoint", name, "err", err)
			s.restoreAfterFailedUpdate(ctx, name, oldConfig, oldStates, "Update to endpoint configuration "+configName+" failed: "+err.Error())
			return
		}
		le.mu.Lock()
		blue := le.variants
		le.variants = green
		le.mu.Unlock()
		if err := s.putEndpoint(ctx, name, func(e *catalog.Endpoint) {
			e.EndpointConfigName = cfg.EndpointConfigName
			e.EndpointStatus = catalog.StatusInService
			e.FailureReason = ""
			e.Variants = states
		}); err != nil {
			s.log.Error("endpoint status", "endpoint", name, "err", err)
		}
		s.closeVariants(ctx, blue)
		s.log.Info("endpoint updated", "endpoint", name, "config", cfg.EndpointConfigName)
	})
	ep.EndpointStatus = catalog.StatusUpdating
	return ep, nil
}

func (s *Service) restoreAfterFailedUpdate(ctx context.Context, name, config string, states []catalog.VariantState, reason string) {
	if s.ctx.Err() != nil {
		// Shutdown interrupted the update; the endpoint stays Updating on
		// its old config, and Start restores that config.
		return
	}
	if len(reason) > 1024 {
		reason = reason[:1021] + "..."
	}
	if err := s.putEndpoint(context.WithoutCancel(ctx), name, func(e *catalog.Endpoint) {
		e.EndpointConfigName = config
		e.EndpointStatus = catalog.StatusInService
		e.FailureReason = reason
		e.Variants = states
	}); err != nil {
		s.log.Error("endpoint status", "endpoint", name, "err", err)
	}
}

func (s *Service) putEndpoint(ctx context.Context, name string, change func(*catalog.Endpoint)) error {
	ep, err := s.deps.Store.GetEndpoint(ctx, name)
	if err != nil {
		return err
	}
	change(ep)
	ep.LastModifiedTime = catalog.Now()
	return s.deps.Store.PutEndpoint(ctx, ep)
}

func (s *Service) endOp(le *liveEndpoint) {
	s.mu.Lock()
	le.busy = false
	s.mu.Unlock()
}

// checkConversion refuses turning an instance-based endpoint into a
// serverless one, as SageMaker does (the other way round is allowed).
func (s *Service) checkConversion(ctx context.Context, ep *catalog.Endpoint, next *catalog.EndpointConfig) error {
	old, err := s.deps.Store.GetEndpointConfig(ctx, ep.EndpointConfigName)
	if err != nil {
		return nil // the old config was deleted; nothing to compare
	}
	wasInstances := false
	for _, pv := range old.ProductionVariants {
		if pv.ServerlessConfig == nil {
			wasInstances = true
		}
	}
	for _, pv := range next.ProductionVariants {
		if wasInstances && pv.ServerlessConfig != nil {
			return apierr.Validationf("You cannot convert an instance-based endpoint (%s) to a serverless endpoint. Create a new serverless endpoint instead.", ep.EndpointName)
		}
	}
	return nil
}

// DesiredWeightAndCapacity is one entry of UpdateEndpointWeightsAndCapacities.
type DesiredWeightAndCapacity struct {
	VariantName            string                  `json:"VariantName"`
	DesiredWeight          *float64                `json:"DesiredWeight,omitempty"`
	DesiredInstanceCount   *int                    `json:"DesiredInstanceCount,omitempty"`
	ServerlessUpdateConfig *ServerlessUpdateConfig `json:"ServerlessUpdateConfig,omitempty"`
}

// ServerlessUpdateConfig changes a serverless variant's concurrency.
type ServerlessUpdateConfig struct {
	MaxConcurrency         *int `json:"MaxConcurrency,omitempty"`
	ProvisionedConcurrency *int `json:"ProvisionedConcurrency,omitempty"`
}

// UpdateEndpointWeightsAndCapacities changes variants' weights and
// instance counts in place: the endpoint is Updating until the pools have
// the new counts.
func (s *Service) UpdateEndpointWeightsAndCapacities(ctx context.Context, name string, desired []DesiredWeightAndCapacity) (*catalog.Endpoint, error) {
	if len(desired) == 0 {
		return nil, apierr.Validationf("1 validation error detected: Value '[]' at 'desiredWeightsAndCapacities' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	for i, d := range desired {
		if d.DesiredInstanceCount != nil && *d.DesiredInstanceCount < 0 {
			return nil, apierr.Validationf("1 validation error detected: Value '%d' at 'desiredWeightsAndCapacities.%d.member.desiredInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 0", *d.DesiredInstanceCount, i+1)
		}
		if d.DesiredWeight != nil && *d.DesiredWeight < 0 {
			return nil, apierr.Validationf("1 validation error detected: Value '%g' at 'desiredWeightsAndCapacities.%d.member.desiredWeight' failed to satisfy constraint: Member must have value greater than or equal to 0", *d.DesiredWeight, i+1)
		}
	}
	ep, le, err := s.beginOp(ctx, name, "update", false)
	if err != nil {
		return nil, err
	}
	states := append([]catalog.VariantState(nil), ep.Variants...)
	var missing []string
	for _, d := range desired {
		found := false
		for i := range states {
			if states[i].VariantName == d.VariantName {
				found = true
				if d.DesiredWeight != nil {
					states[i].DesiredWeight = *d.DesiredWeight
				}
				if d.DesiredInstanceCount != nil {
					if states[i].ServerlessConfig != nil {
						s.endOp(le)
						return nil, apierr.Validationf("DesiredInstanceCount cannot be set for the serverless variant %q; use ServerlessUpdateConfig.", d.VariantName)
					}
					states[i].DesiredInstanceCount = *d.DesiredInstanceCount
				}
				if u := d.ServerlessUpdateConfig; u != nil {
					sc := states[i].ServerlessConfig
					if sc == nil {
						s.endOp(le)
						return nil, apierr.Validationf("ServerlessUpdateConfig can only be set for a serverless variant; %q uses instances.", d.VariantName)
					}
					next := *sc
					if u.MaxConcurrency != nil {
						next.MaxConcurrency = *u.MaxConcurrency
					}
					if u.ProvisionedConcurrency != nil {
						next.ProvisionedConcurrency = *u.ProvisionedConcurrency
					}
					if next.MaxConcurrency < 1 || next.MaxConcurrency > 200 || next.ProvisionedConcurrency < 0 || next.ProvisionedConcurrency > next.MaxConcurrency {
						s.endOp(le)
						return nil, apierr.Validationf("Invalid ServerlessUpdateConfig for variant %q: MaxConcurrency must be 1-200 and ProvisionedConcurrency at most MaxConcurrency (got %d and %d).", d.VariantName, next.MaxConcurrency, next.ProvisionedConcurrency)
					}
					states[i].ServerlessConfig = &next
				}
			}
		}
		if !found {
			missing = append(missing, d.VariantName)
		}
	}
	if len(missing) > 0 {
		s.endOp(le)
		return nil, apierr.Validationf("The variant(s) [%s] are not present in endpoint %q.", strings.Join(missing, ", "), ep.EndpointArn)
	}
	if err := s.setStatus(ctx, name, catalog.StatusUpdating, "", states); err != nil {
		s.endOp(le)
		return nil, err
	}
	s.runOp(le, func(ctx context.Context) {
		err := s.applyStates(ctx, le, states)
		reason := ""
		if err != nil {
			reason = "Failed to update endpoint capacity: " + err.Error()
		}
		if err := s.setStatus(context.WithoutCancel(ctx), name, catalog.StatusInService, reason, nil); err != nil {
			s.log.Error("endpoint status", "endpoint", name, "err", err)
		}
	})
	ep.EndpointStatus = catalog.StatusUpdating
	return ep, nil
}

// applyStates sets live weights and resizes pools to the desired counts.
func (s *Service) applyStates(ctx context.Context, le *liveEndpoint, states []catalog.VariantState) error {
	le.mu.Lock()
	var resize []*liveVariant
	for _, v := range le.variants {
		for _, st := range states {
			if st.VariantName != v.name {
				continue
			}
			v.weight = st.DesiredWeight
			if sc := st.ServerlessConfig; sc != nil && v.serverless.Load() != nil {
				v.serverless.Store(sc)
				v.desired = s.warmCount(sc)
				v.pool.SetElasticLimits(sc.MaxConcurrency, pool.Needed(sc.MaxConcurrency, s.cfg.InstanceConcurrency, 0))
				s.trackProvisioned(v, le.name, sc.ProvisionedConcurrency)
			} else {
				v.desired = st.DesiredInstanceCount
				if v.async {
					v.pool.SetElasticLimits(0, max(v.desired, 1))
				}
			}
			resize = append(resize, v)
		}
	}
	le.mu.Unlock()
	var errs []error
	for _, v := range resize {
		if v.serverless.Load() != nil {
			v.pool.EnsureAtLeast(v.desired)
			continue // surplus warm instances leave when idle
		}
		if err := v.pool.Resize(ctx, v.desired); err != nil {
			errs = append(errs, fmt.Errorf("variant %s: %w", v.name, err))
		}
	}
	return errors.Join(errs...)
}

// DeleteEndpoint marks the endpoint Deleting, stops routing to it, and
// drains and stops its instances in the background before removing it.
func (s *Service) DeleteEndpoint(ctx context.Context, name string) error {
	ep, err := s.deps.Store.GetEndpoint(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return s.errNoEndpoint(name)
	}
	if err != nil {
		return err
	}
	if ep.EndpointStatus == catalog.StatusDeleting {
		return apierr.Validationf("Cannot delete in-progress endpoint %q.", ep.EndpointArn)
	}
	if err := s.setStatus(ctx, name, catalog.StatusDeleting, "", nil); err != nil {
		return err
	}
	s.mu.Lock()
	le := s.live[strings.ToLower(name)]
	delete(s.live, strings.ToLower(name))
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if le != nil {
			le.opMu.Lock() // wait for an in-progress create/update
			le.mu.Lock()
			vs := le.variants
			le.variants = nil
			le.mu.Unlock()
			le.opMu.Unlock()
			s.closeVariants(s.ctx, vs)
		}
		if err := s.deps.Store.DeleteEndpoint(context.WithoutCancel(s.ctx), ep.EndpointName); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			s.log.Error("delete endpoint", "endpoint", name, "err", err)
		}
		s.log.Info("endpoint deleted", "endpoint", name)
	}()
	return nil
}

// parseResourceID splits endpoint/<ep>/variant/<v>.
func parseResourceID(id string) (endpoint, variant string, ok bool) {
	parts := strings.Split(id, "/")
	if len(parts) != 4 || parts[0] != "endpoint" || parts[2] != "variant" {
		return "", "", false
	}
	return parts[1], parts[3], true
}

// Stats returns a variant's pool statistics and desired count, for the
// autoscaler. ok is false if the variant is not running.
func (s *Service) Stats(resourceID string) (pool.Stats, int, bool) {
	epName, vName, ok := parseResourceID(resourceID)
	if !ok {
		return pool.Stats{}, 0, false
	}
	s.mu.RLock()
	le := s.live[strings.ToLower(epName)]
	busy := le != nil && le.busy
	s.mu.RUnlock()
	if le == nil || busy {
		// Missing, or mid-operation (Creating, Updating): not scalable now.
		return pool.Stats{}, 0, false
	}
	le.mu.RLock()
	defer le.mu.RUnlock()
	for _, v := range le.variants {
		if v.name == vName {
			return s.withBacklog(le.name, v, v.pool.Snapshot()), v.desired, true
		}
	}
	return pool.Stats{}, 0, false
}

// CheckVariant reports whether resourceID names an existing endpoint
// variant, in the wording Application Auto Scaling uses.
func (s *Service) CheckVariant(ctx context.Context, resourceID string) error {
	epName, vName, ok := parseResourceID(resourceID)
	if !ok {
		return apierr.Validationf("Unsupported resource ID %s: expected endpoint/<endpoint-name>/variant/<variant-name>.", resourceID)
	}
	ep, err := s.deps.Store.GetEndpoint(ctx, epName)
	if err != nil {
		return apierr.Validationf("Endpoint %s does not exist.", epName)
	}
	for _, st := range ep.Variants {
		if st.VariantName == vName {
			return nil
		}
	}
	return apierr.Validationf("The variant %s does not exist on endpoint %s.", vName, epName)
}

// SetDesiredCount is the autoscaler's lever: UpdateEndpointWeightsAndCapacities
// for one variant's instance count.
func (s *Service) SetDesiredCount(ctx context.Context, resourceID string, n int, reason string) error {
	epName, vName, ok := parseResourceID(resourceID)
	if !ok {
		return fmt.Errorf("bad resource id %q", resourceID)
	}
	s.log.Info("autoscaling", "endpoint", epName, "variant", vName, "desired", n, "reason", reason)
	_, err := s.UpdateEndpointWeightsAndCapacities(ctx, epName, []DesiredWeightAndCapacity{{VariantName: vName, DesiredInstanceCount: &n}})
	return err
}
