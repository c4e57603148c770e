package pool

import (
	"fmt"
	"sort"
	"time"
)

// Needed is how many instances a demand of in-flight plus waiting
// invocations needs at a per-instance concurrency, capped at max (0 = no cap).
func Needed(demand, concurrency, max int) int {
	if demand <= 0 {
		return 0
	}
	n := (demand + concurrency - 1) / concurrency
	if max > 0 && n > max {
		n = max
	}
	return n
}

// growLocked starts instances in the background until ready plus starting
// instances cover the demand. Called with p.mu held.
func (p *Pool) growLocked() {
	need := Needed(p.inflight+p.waiters.len(), p.cfg.Concurrency, p.cfg.MaxInstances)
	for have := len(p.instances) + p.starting; have < need; have++ {
		p.starting++
		p.wg.Add(1)
		go p.startBackground()
	}
}

// startBackground starts one instance for waiting invocations.
func (p *Pool) startBackground() {
	defer p.wg.Done()
	in, err := p.startOne(p.bgCtx)
	p.mu.Lock()
	p.starting--
	if err == nil && !p.closed {
		p.instances = append(p.instances, in)
		p.handOffLocked()
		p.noticeLocked()
		p.mu.Unlock()
		p.changed()
		return
	}
	if err == nil {
		err = ErrClosed
	}
	p.lastStart = err
	// Nothing else will serve the waiters: fail them with the reason, so
	// no request waits on a start that will not come. The next invocation
	// starts afresh.
	if len(p.instances) == 0 && p.starting == 0 {
		p.waiters.failAll(fmt.Errorf("cold start: %w", err))
	}
	p.mu.Unlock()
	if in != nil {
		p.closeInstance(in)
	}
	p.log.Warn("instance start failed", "err", err)
}

// EnsureAtLeast starts instances in the background until at least n are
// ready or starting (provisioned concurrency).
func (p *Pool) EnsureAtLeast(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for have := len(p.instances) + p.starting; have < n; have++ {
		p.starting++
		p.wg.Add(1)
		go p.startBackground()
	}
}

// InstanceState is what the idle decision reads of an instance.
type InstanceState struct {
	ID          string
	Outstanding int
	LastUsed    time.Time
}

// IdleVictims decides which instances to stop: those with nothing in
// flight whose last use is at least idle ago, oldest first, keeping at
// least keep instances. It is pure.
func IdleVictims(insts []InstanceState, keep int, idle time.Duration, now time.Time) []string {
	cands := make([]InstanceState, 0, len(insts))
	for _, in := range insts {
		if in.Outstanding == 0 && now.Sub(in.LastUsed) >= idle {
			cands = append(cands, in)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].LastUsed.Before(cands[j].LastUsed) })
	n := min(len(cands), len(insts)-keep)
	if n <= 0 {
		return nil
	}
	out := make([]string, n)
	for i := range n {
		out[i] = cands[i].ID
	}
	return out
}

// StopIdle stops the instances IdleVictims picks, draining each (none has
// anything in flight, but one may be handed work while it leaves). It
// returns how many it stopped.
func (p *Pool) StopIdle(keep int, idle time.Duration, now time.Time) int {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0
	}
	states := make([]InstanceState, len(p.instances))
	byID := map[string]*instance{}
	for i, in := range p.instances {
		states[i] = InstanceState{ID: in.id, Outstanding: in.outstanding, LastUsed: in.lastUsed}
		byID[in.id] = in
	}
	ids := IdleVictims(states, keep, idle, now)
	victims := make([]*instance, 0, len(ids))
	for _, id := range ids {
		in := byID[id]
		p.removeLocked(in)
		victims = append(victims, in)
	}
	if len(victims) > 0 {
		p.noticeLocked()
	}
	p.mu.Unlock()
	for _, in := range victims {
		p.log.Info("instance idle; stopping", "instance", in.id, "idle", now.Sub(in.lastUsed).Round(time.Millisecond))
		p.stop(in)
	}
	return len(victims)
}

// SetElasticLimits changes an elastic pool's concurrency cap and instance
// cap (UpdateEndpointWeightsAndCapacities on a serverless variant).
func (p *Pool) SetElasticLimits(maxInFlight, maxInstances int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.MaxInFlight = maxInFlight
	p.cfg.MaxInstances = maxInstances
}
