package hosting

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pool"
)

// Serverless variants are elastic pools: no instance until a request
// arrives (a cold start it waits for), more as concurrency rises, none
// again after an idle period — except ProvisionedConcurrency, which stays
// warm. At most MaxConcurrency invocations run at once; more are refused
// at once with ThrottlingException.
//
// Each instance runs up to Config.InstanceConcurrency invocations, so that
// many concurrent requests share one cold start; the pool starts
// ceil(concurrency / InstanceConcurrency) instances, at most
// ceil(MaxConcurrency / InstanceConcurrency).

// serverlessType is the capacity a serverless instance reserves on the
// node: its memory size, and vCPUs in proportion (one per 2 GB, as AWS
// allots CPU in proportion to memory).
func serverlessType(memoryMB int) instancetype.Type {
	return instancetype.Type{
		Name:      fmt.Sprintf("serverless-%dMB", memoryMB),
		VCPUs:     max(1, memoryMB/2048),
		MemoryGiB: float64(memoryMB) / 1024,
		Purpose:   "serverless",
	}
}

// warmCount is how many instances provisioned concurrency keeps warm.
func (s *Service) warmCount(sc *catalog.ServerlessConfig) int {
	return pool.Needed(sc.ProvisionedConcurrency, s.cfg.InstanceConcurrency, 0)
}

// serverlessPool turns a pool config into a serverless one.
func (s *Service) serverlessPool(pc *pool.Config, endpoint, variant string, sc *catalog.ServerlessConfig) {
	pc.Elastic = true
	pc.MaxInFlight = sc.MaxConcurrency
	pc.MaxInstances = pool.Needed(sc.MaxConcurrency, s.cfg.InstanceConcurrency, 0)
	pc.QueueTimeout = s.cfg.Serverless.StartTimeout
	pc.OnStart = func(load time.Duration) {
		if s.deps.Observer != nil {
			s.deps.Observer.ModelSetup(endpoint, variant, load)
		}
	}
}

// prepareServerless readies a serverless variant at create or update
// time: it loads the model once (the artifact is fetched and unpacked
// into the cache, and a model that cannot load or fit fails the endpoint
// now rather than at the first request), then keeps only the provisioned
// instances warm.
func (s *Service) prepareServerless(ctx context.Context, endpoint string, v *liveVariant) error {
	if err := v.pool.Resize(ctx, max(1, v.desired)); err != nil {
		return err
	}
	if err := v.pool.Resize(ctx, v.desired); err != nil {
		return err
	}
	s.trackProvisioned(v, endpoint, v.serverless.Load().ProvisionedConcurrency)
	return nil
}

// trackProvisioned keeps one open usage-ledger record per unit of
// provisioned concurrency (Mode serverless-provisioned), so its warm time
// can be priced; n = 0 closes them all.
func (s *Service) trackProvisioned(v *liveVariant, endpoint string, n int) {
	if s.deps.Ledger == nil || v.serverless.Load() == nil {
		return
	}
	now := time.Now()
	for len(v.provisioned) > n {
		last := v.provisioned[len(v.provisioned)-1]
		v.provisioned = v.provisioned[:len(v.provisioned)-1]
		s.deps.Ledger.InstanceStopped(last, now)
	}
	for len(v.provisioned) < n {
		id := fmt.Sprintf("%s/%s/provisioned-%d-%d", endpoint, v.name, len(v.provisioned)+1, now.UnixNano())
		v.provisioned = append(v.provisioned, id)
		s.deps.Ledger.InstanceStarted(meter.InstanceUsage{
			InstanceID: id, Mode: "serverless-provisioned", Resource: endpoint, Variant: v.name,
			InstanceType: serverlessType(v.serverless.Load().MemorySizeInMB).Name, Start: now,
		})
	}
}

// reapIdle stops serverless instances that have been idle for
// IdleTimeout, keeping provisioned concurrency warm, until ctx ends.
func (s *Service) reapIdle(ctx context.Context) {
	every := min(max(min(s.cfg.Serverless.IdleTimeout, s.cfg.AsyncIdleTimeout)/10, 10*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, e := range s.serverlessVariants() {
				if e.v.async {
					e.v.pool.StopIdle(0, s.cfg.AsyncIdleTimeout, now)
					continue
				}
				e.v.pool.StopIdle(e.desired, s.cfg.Serverless.IdleTimeout, now)
				e.v.pool.EnsureAtLeast(e.desired)
			}
		}
	}
}

// elasticVariant is a serverless or async variant with its desired warm
// count, read under its endpoint's lock (updates change it).
type elasticVariant struct {
	v       *liveVariant
	desired int
}

func (s *Service) serverlessVariants() []elasticVariant {
	s.mu.RLock()
	eps := make([]*liveEndpoint, 0, len(s.live))
	for _, le := range s.live {
		eps = append(eps, le)
	}
	s.mu.RUnlock()
	var out []elasticVariant
	for _, le := range eps {
		le.mu.RLock()
		for _, v := range le.variants {
			if v.serverless.Load() != nil || v.async {
				out = append(out, elasticVariant{v, v.desired})
			}
		}
		le.mu.RUnlock()
	}
	return out
}

// checkFits refuses a model whose artifacts alone exceed the memory size
// of a serverless variant.
func checkFits(dir string, memoryMB int) error {
	if dir == "" {
		return nil
	}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() {
				total += info.Size() // follows links into the artifact cache
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if total > int64(memoryMB)<<20 {
		return fmt.Errorf("the model's artifacts take %d MB, more than the variant's MemorySizeInMB of %d: choose a larger MemorySizeInMB (up to 6144) or a real-time instance type", total>>20, memoryMB)
	}
	return nil
}
