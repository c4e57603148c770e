package hosting

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/pool"
)

// Hooks for job-scoped pools (batch transform): a job starts instances of
// a model exactly as an endpoint does — capacity reserved on this node,
// the artifact cache, the runtime the image names, a usage-ledger record —
// but with its own mode, resource name and extra container environment.

// StartFuncFor returns the start function of a job-scoped pool running
// modelName on instanceType. mode and resource name the usage-ledger
// records (e.g. "batch", the job name); env is added to the model's
// container environment (job values win). A missing model is a
// ValidationException naming it; an unknown instance type too.
func (s *Service) StartFuncFor(ctx context.Context, modelName, instanceType, mode, resource string, env map[string]string) (pool.StartFunc, error) {
	m, err := s.deps.Store.GetModel(ctx, modelName)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, s.errNoModel(modelName)
	}
	if err != nil {
		return nil, err
	}
	it, err := s.deps.Types.Lookup(instanceType)
	if err != nil {
		return nil, apierr.Validationf("%s", s.deps.Types.ValidationMessage(instanceType, "transformResources.instanceType"))
	}
	if c := primaryContainer(m); c != nil && len(env) > 0 {
		cc := *c
		cc.Environment = maps.Clone(c.Environment)
		if cc.Environment == nil {
			cc.Environment = map[string]string{}
		}
		maps.Copy(cc.Environment, env)
		mm := *m
		mm.PrimaryContainer, mm.Containers = &cc, nil
		m = &mm
	}
	return s.startFuncMode(mode, resource, "", m, it, 0, nil), nil
}

// CheckCapacity says whether count instances of instanceType could ever
// run together on this node (its whole capacity, not what is free now).
// The error wraps instancetype.ErrInsufficientCapacity or ErrUnknownType.
func (s *Service) CheckCapacity(instanceType string, count int) error {
	it, err := s.deps.Types.Lookup(instanceType)
	if err != nil {
		return err
	}
	vcpus, mem := s.deps.Node.Capacity()
	if it.VCPUs*count > vcpus || it.MemoryBytes()*int64(count) > mem {
		return fmt.Errorf("%d × %s needs %d vCPUs and %.1f GiB; this node has %d vCPUs and %.1f GiB in all: %w",
			count, it.Name, it.VCPUs*count, float64(it.MemoryBytes()*int64(count))/(1<<30), vcpus, float64(mem)/(1<<30),
			instancetype.ErrInsufficientCapacity)
	}
	return nil
}
