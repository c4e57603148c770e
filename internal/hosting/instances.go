package hosting

import (
	"context"
	"fmt"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime"
)

// startFuncMode returns how a variant's pool starts one instance: reserve the
// instance type's capacity on this node, resolve the model artifact (cached,
// unpacked once), load it with the runtime the image names, and open a
// usage-ledger record (of mode) that the release function closes.
func (s *Service) startFuncMode(mode, endpoint, variant string, m *catalog.Model, it instancetype.Type, startupSeconds int, sc *catalog.ServerlessConfig) pool.StartFunc {
	return func(ctx context.Context, id string) (runtime.Model, func(), error) {
		c := primaryContainer(m)
		img, err := resolveImage(c.Image)
		if err != nil {
			return nil, nil, fmt.Errorf("model %s: %w", m.ModelName, err)
		}
		loader := s.deps.Loaders[img.Kind]
		if loader == nil {
			return nil, nil, fmt.Errorf("model %s: the %s runtime is not available in this build", m.ModelName, img.Kind)
		}
		t0 := time.Now()
		res, err := s.deps.Node.Reserve(it)
		if err != nil {
			return nil, nil, err
		}
		dir := ""
		if c.ModelDataUrl != "" {
			dir, err = s.deps.Artifacts.Resolve(ctx, c.ModelDataUrl)
			if err != nil {
				res.Release()
				return nil, nil, fmt.Errorf("model %s: %w", m.ModelName, err)
			}
		}
		tArtifact := time.Since(t0)
		if sc != nil {
			if err := checkFits(dir, sc.MemorySizeInMB); err != nil {
				res.Release()
				return nil, nil, fmt.Errorf("model %s: %w", m.ModelName, err)
			}
		}
		spec := runtime.Spec{
			Kind:           img.Kind,
			Image:          c.Image,
			ModelDir:       dir,
			Command:        img.Command,
			Environment:    c.Environment,
			Threads:        it.Threads(s.cfg.CPUs),
			MemoryBytes:    int64(it.MemoryGiB * (1 << 30)),
			StartupTimeout: time.Duration(startupSeconds) * time.Second,
			Logger:         s.log.With("endpoint", endpoint, "variant", variant, "instance", id),
		}
		tLoad := time.Now()
		model, err := loader.Load(ctx, spec)
		if err != nil {
			res.Release()
			return nil, nil, fmt.Errorf("model %s (%s): %w", m.ModelName, c.ModelDataUrl, err)
		}
		s.log.Info("instance loaded", "endpoint", endpoint, "variant", variant, "instance", id, "mode", mode,
			"artifact", tArtifact.Round(time.Microsecond), "load", time.Since(tLoad).Round(time.Microsecond))
		if s.deps.Ledger != nil {
			s.deps.Ledger.InstanceStarted(meter.InstanceUsage{
				InstanceID: id, Mode: mode, Resource: endpoint, Variant: variant,
				InstanceType: it.Name, Start: time.Now(),
			})
		}
		release := func() {
			if s.deps.Ledger != nil {
				s.deps.Ledger.InstanceStopped(id, time.Now())
			}
			res.Release()
		}
		return model, release, nil
	}
}
