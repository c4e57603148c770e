// Package cost prices the usage ledger: it reads instance lifetimes and
// invocations for a period from the meter, prices them with a price book,
// and groups the cost by mode, resource (endpoint or job), caller or day.
//
// Money is integer nano-dollars (1e-9 USD) internally: every instance
// segment and every serverless invocation is priced once, rounded once,
// and every line and the total are sums of those integers, so the lines
// of any grouping add up to the total exactly. (Micro-dollars would round a
// 4 ms serverless invocation, about 80 nano-dollars, to zero.) The report
// carries a check that its quantities equal the ledger's.
//
// How each mode is priced:
//   - realtime, async, batch (and any other instance-based mode): instance
//     time × the instance type's hourly price. For realtime the instance
//     cost is split into busy time (the invocations' model latency, capped
//     at the instance time) attributed to the callers in proportion to their
//     latency, and an idle line ("paid for, unused") for the rest.
//   - serverless: each invocation's model latency, rounded up to the
//     millisecond, × its memory size in GB × the per-GB-second price. The
//     instance records of serverless endpoints are shown as quantity only.
//   - serverless-provisioned: each provisioned-concurrency unit's time ×
//     its memory size in GB × the provisioned per-GB-second price.
//
// A missing price is an error naming the item, unless the caller asks for
// unpriced lines (Options.AllowUnpriced), which then appear explicitly.
//
// cost imports meter (for its record types), pricebook and the standard
// library: never the catalog, a mode service or an adapter.
package cost

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pricebook"
)

// Ledger is what the report reads; *meter.Ledger implements it.
type Ledger interface {
	Instances(ctx context.Context, from, to time.Time) ([]meter.InstanceRecord, error)
	Invocations(ctx context.Context, from, to time.Time) ([]meter.Invocation, error)
}

var _ Ledger = (*meter.Ledger)(nil)

// Groupings.
const (
	ByMode     = "mode"
	ByResource = "resource"
	ByCaller   = "caller"
	ByDay      = "day"
)

// Groupings lists the valid values of Options.By.
var Groupings = []string{ByMode, ByResource, ByCaller, ByDay}

// Line kinds besides the plain "".
const (
	KindIdle     = "idle"     // real-time instance time paid for, unused
	KindUnpriced = "unpriced" // usage the price book has no price for
)

// Modes the ledger records that are priced specially.
const (
	ModeRealtime              = "realtime"
	ModeServerless            = "serverless"
	ModeServerlessProvisioned = "serverless-provisioned"
	// ModeTokens and ModeTokensBatch are foundation-model traffic, priced
	// per 1K input and output tokens (the batch mode at the book's
	// discount); the shared pool's instance time is shown, not billed.
	ModeTokens      = "bedrock-on-demand"
	ModeTokensBatch = "bedrock-batch"
	// ModeProvisionedThroughput is Bedrock provisioned throughput: each
	// instance record is one model unit (genai.InstancesPerUnit is 1), its
	// variant the commitment term; priced per model-unit-hour by term. Its
	// invocations are counted, not priced.
	ModeProvisionedThroughput = "bedrock-provisioned"
)

// Nanos is an amount of money in nano-dollars (1e-9 USD).
type Nanos int64

// USD is n in dollars.
func (n Nanos) USD() float64 { return float64(n) / 1e9 }

// String reads "$12.345678" (rounded to the micro-dollar for display).
func (n Nanos) String() string {
	micro := (int64(n) + 500) / 1000
	if n < 0 {
		micro = (int64(n) - 500) / 1000
	}
	sign := ""
	if micro < 0 {
		sign, micro = "-", -micro
	}
	return fmt.Sprintf("%s$%d.%06d", sign, micro/1e6, micro%1e6)
}

// ErrInvalid is what Compute's error wraps for bad options.
var ErrInvalid = errors.New("invalid report options")

// Options says what to report.
type Options struct {
	From, To time.Time // the period [From, To); To must be after From
	By       string    // one of Groupings; "" is ByMode
	// AllowUnpriced reports usage without a price as KindUnpriced lines
	// instead of failing.
	AllowUnpriced bool
}

// Line is one group's cost.
type Line struct {
	Key             string  `json:"key"`            // the mode, resource, caller or day ("" caller: none)
	Kind            string  `json:"kind,omitempty"` // "", KindIdle or KindUnpriced
	Nanodollars     Nanos   `json:"nanodollars"`
	InstanceSeconds float64 `json:"instanceSeconds"`
	Invocations     int     `json:"invocations"`
	Unpriced        string  `json:"unpriced,omitempty"` // what has no price, for KindUnpriced
}

// Label is the line's key with its kind, as a table shows it.
func (l Line) Label() string {
	k := l.Key
	if k == "" {
		if l.Kind == KindIdle {
			return "idle (paid for, unused)"
		}
		k = "(none)"
	}
	switch l.Kind {
	case KindIdle:
		return k + " idle (paid for, unused)"
	case KindUnpriced:
		return k + " UNPRICED: " + l.Unpriced
	}
	return k
}

// Check compares the report's quantities with the ledger's.
type Check struct {
	LedgerInstanceMicros int64 `json:"ledgerInstanceMicros"` // instance time in the period, summed from the ledger
	ReportInstanceMicros int64 `json:"reportInstanceMicros"` // the same, summed over the lines
	LedgerInvocations    int   `json:"ledgerInvocations"`
	ReportInvocations    int   `json:"reportInvocations"`
	LinesNanodollars     Nanos `json:"linesNanodollars"` // the lines' sum
	TotalNanodollars     Nanos `json:"totalNanodollars"` // the priced items' sum
	Reconciled           bool  `json:"reconciled"`
}

// Report is the cost of a period.
type Report struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	By          string    `json:"by"`
	Region      string    `json:"region"`
	PricesAsOf  string    `json:"pricesAsOf"`
	Lines       []Line    `json:"lines"`
	Nanodollars Nanos     `json:"nanodollars"` // the total
	Check       Check     `json:"check"`
}

// item is one priced piece of usage, the unit every grouping sums.
type item struct {
	mode, resource, caller, day, kind, unpriced string
	micros                                      int64 // instance time
	invocations                                 int
	nanos                                       Nanos
}

func (it item) key(by string) string {
	switch by {
	case ByResource:
		return it.resource
	case ByCaller:
		return it.caller
	case ByDay:
		return it.day
	}
	return it.mode
}

// Compute prices the ledger over the period.
func Compute(ctx context.Context, l Ledger, book *pricebook.Book, o Options) (*Report, error) {
	if o.By == "" {
		o.By = ByMode
	}
	if !slices.Contains(Groupings, o.By) {
		return nil, fmt.Errorf("cost: %w: by %q: must be one of %s", ErrInvalid, o.By, strings.Join(Groupings, ", "))
	}
	if o.From.IsZero() || o.To.IsZero() || !o.To.After(o.From) {
		return nil, fmt.Errorf("cost: %w: period from %s to %s: both are needed and to must be after from", ErrInvalid,
			o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	insts, err := l.Instances(ctx, o.From, o.To)
	if err != nil {
		return nil, fmt.Errorf("cost: %w", err)
	}
	invs, err := l.Invocations(ctx, o.From, o.To)
	if err != nil {
		return nil, fmt.Errorf("cost: %w", err)
	}
	p := &pricer{book: book, allowUnpriced: o.AllowUnpriced}
	items, err := p.items(o.From, o.To, insts, invs)
	if err != nil {
		return nil, err
	}
	r := &Report{From: o.From, To: o.To, By: o.By, Region: book.Region, PricesAsOf: book.AsOf}
	r.Check.LedgerInvocations = len(invs)
	for _, rec := range insts {
		s, e := clip(rec, o.From, o.To)
		r.Check.LedgerInstanceMicros += max(0, e.Sub(s).Microseconds())
	}
	type lineKey struct{ key, kind, unpriced string }
	index := map[lineKey]int{}
	for _, it := range items {
		r.Nanodollars += it.nanos
		r.Check.ReportInstanceMicros += it.micros
		r.Check.ReportInvocations += it.invocations
		k := lineKey{it.key(o.By), it.kind, it.unpriced}
		i, ok := index[k]
		if !ok {
			i = len(r.Lines)
			index[k] = i
			r.Lines = append(r.Lines, Line{Key: k.key, Kind: k.kind, Unpriced: k.unpriced})
		}
		ln := &r.Lines[i]
		ln.Nanodollars += it.nanos
		ln.Invocations += it.invocations
		ln.InstanceSeconds += float64(it.micros) / 1e6 // re-summed below
	}
	micros := make([]int64, len(r.Lines))
	for _, it := range items {
		micros[index[lineKey{it.key(o.By), it.kind, it.unpriced}]] += it.micros
	}
	for i := range r.Lines {
		r.Lines[i].InstanceSeconds = float64(micros[i]) / 1e6
		r.Check.LinesNanodollars += r.Lines[i].Nanodollars
	}
	r.Check.TotalNanodollars = r.Nanodollars
	r.Check.Reconciled = r.Check.LedgerInstanceMicros == r.Check.ReportInstanceMicros &&
		r.Check.LedgerInvocations == r.Check.ReportInvocations &&
		r.Check.LinesNanodollars == r.Check.TotalNanodollars
	slices.SortStableFunc(r.Lines, func(a, b Line) int {
		if o.By == ByDay {
			if c := strings.Compare(a.Key, b.Key); c != 0 {
				return c
			}
			return strings.Compare(a.Kind, b.Kind)
		}
		if c := cmp.Compare(b.Nanodollars, a.Nanodollars); c != 0 {
			return c
		}
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	if r.Lines == nil {
		r.Lines = []Line{}
	}
	return r, nil
}

// clip is the part of rec's lifetime inside [from, to); a running instance
// counts until its last heartbeat.
func clip(rec meter.InstanceRecord, from, to time.Time) (time.Time, time.Time) {
	end := rec.End
	if end.IsZero() {
		end = rec.LastSeen
	}
	s, e := rec.Start, end
	if s.Before(from) {
		s = from
	}
	if e.After(to) {
		e = to
	}
	if e.Before(s) {
		e = s
	}
	return s, e
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// pricer turns ledger rows into items.
type pricer struct {
	book          *pricebook.Book
	allowUnpriced bool
}

// unpriced returns err unless unpriced lines are allowed, in which case
// it returns nil and ok = false.
func (p *pricer) price(err error) (ok bool, _ error) {
	if err == nil {
		return true, nil
	}
	if p.allowUnpriced && errors.Is(err, pricebook.ErrMissingPrice) {
		return false, nil
	}
	return false, fmt.Errorf("cost: %w", err)
}

// group is the instance time of one instance-priced resource variant on
// one day, with the busy time of its invocations per caller.
type group struct {
	mode, resource, variant, day string
	micros                       int64
	nanos                        Nanos
	busy                         map[string]int64 // caller → model latency µs
	calls                        map[string]int   // caller → invocations
}

func (p *pricer) items(from, to time.Time, insts []meter.InstanceRecord, invs []meter.Invocation) ([]item, error) {
	var out []item
	type gkey struct{ mode, resource, variant, day string }
	groups := map[gkey]*group{}
	var order []gkey
	getGroup := func(k gkey) *group {
		g, ok := groups[k]
		if !ok {
			g = &group{mode: k.mode, resource: k.resource, variant: k.variant, day: k.day, busy: map[string]int64{}, calls: map[string]int{}}
			groups[k] = g
			order = append(order, k)
		}
		return g
	}
	for _, rec := range insts {
		s, e := clip(rec, from, to)
		for s.Before(e) {
			s = s.UTC()
			next := time.Date(s.Year(), s.Month(), s.Day()+1, 0, 0, 0, 0, time.UTC)
			segEnd := minTime(e, next)
			us := segEnd.Sub(s).Microseconds()
			base := item{mode: rec.Mode, resource: rec.Resource, day: day(s), micros: us}
			switch rec.Mode {
			case ModeServerless, ModeTokens, ModeTokensBatch:
				out = append(out, base) // billed per invocation (compute or tokens)
			case ModeProvisionedThroughput:
				hourly, err := p.book.ModelUnitHourly(rec.Resource, rec.Variant)
				ok, err := p.price(err)
				if err != nil {
					return nil, err
				}
				if !ok {
					base.kind, base.unpriced = KindUnpriced, "provisioned throughput of "+rec.Resource+" ("+rec.Variant+")"
				} else {
					base.nanos = Nanos(math.Round(float64(us) * hourly / 3.6))
				}
				out = append(out, base)
			case ModeServerlessProvisioned:
				mb, err := memoryOf(rec.InstanceType)
				if err != nil {
					return nil, fmt.Errorf("cost: instance %s: %w", rec.InstanceID, err)
				}
				rate, err := p.book.ProvisionedPerGBSecond()
				ok, err := p.price(err)
				if err != nil {
					return nil, err
				}
				if !ok {
					base.kind, base.unpriced = KindUnpriced, "serverless provisioned concurrency"
				} else {
					base.nanos = Nanos(math.Round(float64(us) / 1e6 * float64(mb) / 1024 * rate * 1e9))
				}
				out = append(out, base)
			default:
				hourly, err := p.book.InstanceHourly(rec.InstanceType)
				ok, err := p.price(err)
				if err != nil {
					return nil, err
				}
				if !ok {
					base.kind, base.unpriced = KindUnpriced, "instance type "+rec.InstanceType
					out = append(out, base)
					break
				}
				g := getGroup(gkey{rec.Mode, rec.Resource, rec.Variant, base.day})
				g.micros += us
				g.nanos += Nanos(math.Round(float64(us) * hourly / 3.6))
			}
			s = segEnd
		}
	}
	for _, v := range invs {
		d := day(v.Time)
		if v.Mode == ModeTokens || v.Mode == ModeTokensBatch {
			it := item{mode: v.Mode, resource: v.Resource, caller: v.Caller, day: d, invocations: 1}
			m, err := p.book.Tokens(v.Resource)
			ok, err := p.price(err)
			if err != nil {
				return nil, err
			}
			if !ok {
				it.kind, it.unpriced = KindUnpriced, "foundation model "+v.Resource
			} else {
				usd := float64(v.InputTokens)/1000*m.InputPer1KUSD + float64(v.OutputTokens)/1000*m.OutputPer1KUSD
				if v.Mode == ModeTokensBatch {
					usd *= 1 - p.book.BatchDiscount()
				}
				it.nanos = Nanos(math.Round(usd * 1e9))
			}
			out = append(out, it)
			continue
		}
		if v.Mode == ModeProvisionedThroughput {
			out = append(out, item{mode: v.Mode, resource: v.Resource, caller: v.Caller, day: d, invocations: 1})
			continue
		}
		if v.Mode == ModeServerless {
			it := item{mode: v.Mode, resource: v.Resource, caller: v.Caller, day: d, invocations: 1}
			rate, err := p.book.ServerlessPerGBSecond(v.MemoryMB)
			ok, err := p.price(err)
			if err != nil {
				return nil, err
			}
			if !ok {
				it.kind, it.unpriced = KindUnpriced, "serverless memory "+strconv.Itoa(v.MemoryMB)+" MB"
			} else {
				ms := (v.ModelLatency.Microseconds() + 999) / 1000
				it.nanos = Nanos(math.Round(float64(ms) / 1e3 * float64(v.MemoryMB) / 1024 * rate * 1e9))
			}
			out = append(out, it)
			continue
		}
		g := getGroup(gkey{v.Mode, v.Resource, v.Variant, d})
		g.busy[v.Caller] += v.ModelLatency.Microseconds()
		g.calls[v.Caller]++
	}
	for _, k := range order {
		out = append(out, groups[k].items()...)
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// items splits a group's instance cost over its callers by busy time;
// for real-time the unused remainder is an idle item.
func (g *group) items() []item {
	callers := make([]string, 0, len(g.calls))
	var busy int64
	for c := range g.calls {
		callers = append(callers, c)
		busy += g.busy[c]
	}
	slices.Sort(callers)
	base := item{mode: g.mode, resource: g.resource, day: g.day}
	busyMicros, busyNanos := g.micros, g.nanos
	var out []item
	if g.mode == ModeRealtime {
		busyMicros = min(busy, g.micros)
		busyNanos = 0
		if g.micros > 0 {
			busyNanos = Nanos(math.Round(float64(g.nanos) * float64(busyMicros) / float64(g.micros)))
		}
		if g.micros > busyMicros || g.nanos > busyNanos {
			idle := base
			idle.kind, idle.micros, idle.nanos = KindIdle, g.micros-busyMicros, g.nanos-busyNanos
			out = append(out, idle)
		}
	}
	if len(callers) == 0 {
		if busyMicros > 0 || busyNanos > 0 {
			it := base
			it.micros, it.nanos = busyMicros, busyNanos
			out = append(out, it)
		}
		return out
	}
	weights := make([]int64, len(callers))
	for i, c := range callers {
		weights[i] = g.busy[c]
	}
	ms, ns := split(busyMicros, weights), split(int64(busyNanos), weights)
	for i, c := range callers {
		it := base
		it.caller, it.invocations, it.micros, it.nanos = c, g.calls[c], ms[i], Nanos(ns[i])
		out = append(out, it)
	}
	return out
}

// split divides total in proportion to weights (equally if they are all
// zero) so that the parts sum to total exactly: floors, with the remainder
// to the heaviest.
func split(total int64, weights []int64) []int64 {
	parts := make([]int64, len(weights))
	var sum int64
	for _, w := range weights {
		sum += w
	}
	heaviest := 0
	var given int64
	for i, w := range weights {
		if sum == 0 {
			parts[i] = total / int64(len(weights))
		} else {
			parts[i] = int64(float64(total) * float64(w) / float64(sum))
		}
		given += parts[i]
		if w > weights[heaviest] {
			heaviest = i
		}
	}
	parts[heaviest] += total - given
	return parts
}

// memoryOf reads the memory size of a serverless instance type
// ("serverless-2048MB").
func memoryOf(instanceType string) (int, error) {
	s, ok := strings.CutPrefix(instanceType, "serverless-")
	if s, ok2 := strings.CutSuffix(s, "MB"); ok && ok2 {
		if mb, err := strconv.Atoi(s); err == nil && mb > 0 {
			return mb, nil
		}
	}
	return 0, fmt.Errorf("instance type %q: not a serverless memory size (serverless-<MB>MB)", instanceType)
}
