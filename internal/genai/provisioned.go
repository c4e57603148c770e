package genai

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime"
)

// ModeProvisioned is the ledger mode of provisioned throughput: instance
// lifetimes (resource = model id, variant = the commitment term as the
// price book names it) and invocations (tokens, not priced: the model
// units are).
const ModeProvisioned = "bedrock-provisioned"

// InstancesPerUnit is what a model unit is: this many dedicated instances
// of the model, each decoding Config.Concurrency generations together.
const InstancesPerUnit = 1

// Provisioned throughput statuses and commitment terms, as Bedrock names
// them.
const (
	StatusCreating  = "Creating"
	StatusInService = "InService"
	StatusFailed    = "Failed"

	CommitOneMonth  = "OneMonth"
	CommitSixMonths = "SixMonths"
)

// ProvisionedRef prefixes Request.ModelID to route a request to the
// provisioned throughput with the id that follows.
const ProvisionedRef = "provisioned-model/"

// Provisioned is a provisioned throughput as stored and described.
type Provisioned = catalog.ProvisionedThroughput

// ProvisionedStore keeps provisioned throughputs across restarts
// (*catalog.Store).
type ProvisionedStore interface {
	CreateProvisioned(ctx context.Context, p *Provisioned) error
	PutProvisioned(ctx context.Context, p *Provisioned) error
	DeleteProvisioned(ctx context.Context, id string) error
	ListProvisioned(ctx context.Context) ([]Provisioned, error)
}

// ErrProvisionedNotFound: no provisioned throughput has the id or name.
var ErrProvisionedNotFound = errors.New("genai: provisioned throughput not found")

// provisioner owns the provisioned throughputs: one dedicated,
// fixed-size pool each, loaded in the background.
type provisioner struct {
	mu   sync.Mutex
	pts  map[string]*dedicated // by id
	bg   context.Context       // cancelled by Close
	stop context.CancelFunc
	wg   sync.WaitGroup // loading goroutines
}

type dedicated struct {
	rec  Provisioned
	m    *model
	pool *pool.Pool
}

func newProvisioner() *provisioner {
	bg, stop := context.WithCancel(context.Background())
	return &provisioner{pts: map[string]*dedicated{}, bg: bg, stop: stop}
}

func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// term is the price book's name of a commitment.
func term(commitment string) string {
	switch commitment {
	case CommitOneMonth:
		return "1month"
	case CommitSixMonths:
		return "6month"
	}
	return "none"
}

// CreateProvisioned reserves units model units of modelID under name,
// committed for commitment ("", OneMonth or SixMonths). It returns at
// once with status Creating; the instances load in the background and
// the status becomes InService (or Failed, with the reason).
//
// modelID is a foundation model id or an imported model's name, id or
// ARN (stored as ImportedRef+id). The importer's lock is held throughout
// so the model cannot be deleted between the check and the creation.
func (s *Service) CreateProvisioned(ctx context.Context, name, modelID string, units int, commitment string) (Provisioned, error) {
	s.imp.mu.Lock()
	defer s.imp.mu.Unlock()
	m, modelID, ok := s.resolveModelLocked(modelID)
	if !ok {
		return Provisioned{}, apierr.Validationf("The provided model identifier is invalid.")
	}
	if units < 1 {
		return Provisioned{}, apierr.Validationf("1 validation error detected: Value '%d' at 'modelUnits' failed to satisfy constraint: Member must have value greater than or equal to 1", units)
	}
	if name == "" || len(name) > 63 {
		return Provisioned{}, apierr.Validationf("1 validation error detected: Value '%s' at 'provisionedModelName' failed to satisfy constraint: Member must have length between 1 and 63", name)
	}
	now := time.Now().UTC()
	rec := Provisioned{ID: newID(), Name: name, ModelID: modelID, ModelUnits: units, Commitment: commitment,
		Status: StatusCreating, Created: now, LastChanged: now}
	switch commitment {
	case "":
	case CommitOneMonth:
		rec.Expires = now.AddDate(0, 1, 0)
	case CommitSixMonths:
		rec.Expires = now.AddDate(0, 6, 0)
	default:
		return Provisioned{}, apierr.Validationf("1 validation error detected: Value '%s' at 'commitmentDuration' failed to satisfy constraint: Member must satisfy enum value set: [SixMonths, OneMonth]", commitment)
	}
	if s.deps.Provisioned != nil {
		if err := s.deps.Provisioned.CreateProvisioned(ctx, &rec); err != nil {
			if errors.Is(err, catalog.ErrExists) {
				return Provisioned{}, &apierr.Error{Kind: apierr.Validation, Code: "ConflictException", Message: fmt.Sprintf("Provisioned model with name %s already exists.", name), Err: err}
			}
			return Provisioned{}, err
		}
	}
	s.startDedicated(rec, m)
	return rec, nil
}

// startDedicated builds rec's pool and loads its instances in the
// background.
func (s *Service) startDedicated(rec Provisioned, m *model) {
	pt := s.pt
	d := &dedicated{rec: rec, m: m}
	d.pool = pool.New(pool.Config{
		Name:         "pt-" + rec.ID,
		Start:        s.startWith(m, meter.InstanceUsage{Mode: ModeProvisioned, Resource: priceModel(rec.ModelID), Variant: term(rec.Commitment)}),
		Concurrency:  s.cfg.Concurrency,
		QueueLimit:   max(1, rec.ModelUnits*s.cfg.ProvisionedQueue),
		QueueTimeout: s.cfg.QueueTimeout,
		Logger:       s.log,
	})
	pt.mu.Lock()
	pt.pts[rec.ID] = d
	pt.mu.Unlock()
	pt.wg.Add(1)
	go func() {
		defer pt.wg.Done()
		err := d.pool.Resize(pt.bg, rec.ModelUnits*InstancesPerUnit)
		pt.mu.Lock()
		if err != nil {
			d.rec.Status, d.rec.Failure = StatusFailed, "The instances could not be started: "+err.Error()
		} else {
			d.rec.Status = StatusInService
		}
		d.rec.LastChanged = time.Now().UTC()
		rec := d.rec
		pt.mu.Unlock()
		if pt.bg.Err() != nil {
			return // shutting down: the stored status stays as it was
		}
		s.log.Info("provisioned throughput", "id", rec.ID, "model", rec.ModelID, "units", rec.ModelUnits, "status", rec.Status, "err", err)
		if s.deps.Provisioned != nil {
			if err := s.deps.Provisioned.PutProvisioned(pt.bg, &rec); err != nil {
				s.log.Warn("store provisioned throughput", "id", rec.ID, "err", err)
			}
		}
	}()
}

// RestoreProvisioned brings back the stored provisioned throughputs after
// a restart: each reloads its instances (Creating, then InService). One
// whose model is no longer registered is Failed. Imported models must be
// restored first (RestoreImported).
func (s *Service) RestoreProvisioned(ctx context.Context) error {
	if s.deps.Provisioned == nil {
		return nil
	}
	recs, err := s.deps.Provisioned.ListProvisioned(ctx)
	if err != nil {
		return err
	}
	s.imp.mu.Lock()
	defer s.imp.mu.Unlock()
	for _, rec := range recs {
		m, _, ok := s.resolveModelLocked(rec.ModelID)
		if !ok {
			rec.Status, rec.Failure = StatusFailed, fmt.Sprintf("The model %s is not registered.", rec.ModelID)
			s.pt.mu.Lock()
			s.pt.pts[rec.ID] = &dedicated{rec: rec}
			s.pt.mu.Unlock()
			continue
		}
		rec.Status = StatusCreating
		s.startDedicated(rec, m)
	}
	return nil
}

// lookup finds a provisioned throughput by id, name or ARN.
func (s *Service) lookup(ref string) (*dedicated, error) {
	if _, rest, ok := strings.Cut(ref, ":provisioned-model/"); ok {
		ref = rest
	}
	s.pt.mu.Lock()
	defer s.pt.mu.Unlock()
	if d, ok := s.pt.pts[ref]; ok {
		return d, nil
	}
	for _, d := range s.pt.pts {
		if d.rec.Name == ref {
			return d, nil
		}
	}
	return nil, &apierr.Error{Kind: apierr.NotFound, Message: "Provisioned model " + ref + " not found.", Err: ErrProvisionedNotFound}
}

// GetProvisioned describes the provisioned throughput with the id, name
// or ARN.
func (s *Service) GetProvisioned(ref string) (Provisioned, error) {
	d, err := s.lookup(ref)
	if err != nil {
		return Provisioned{}, err
	}
	s.pt.mu.Lock()
	defer s.pt.mu.Unlock()
	return d.rec, nil
}

// ListProvisioned describes every provisioned throughput, oldest first.
func (s *Service) ListProvisioned() []Provisioned {
	s.pt.mu.Lock()
	out := make([]Provisioned, 0, len(s.pt.pts))
	for _, d := range s.pt.pts {
		out = append(out, d.rec)
	}
	s.pt.mu.Unlock()
	byCreation(out, func(p *Provisioned) (time.Time, string) { return p.Created, p.ID })
	return out
}

// byCreation orders records oldest first, ties by id, as the List
// operations answer (provisioned throughputs, imported models, import jobs).
func byCreation[T any](xs []T, key func(*T) (time.Time, string)) {
	slices.SortFunc(xs, func(a, b T) int {
		ta, ia := key(&a)
		tb, ib := key(&b)
		if c := ta.Compare(tb); c != 0 {
			return c
		}
		return strings.Compare(ia, ib)
	})
}

// UpdateProvisioned renames a provisioned throughput (newName) or points
// it at another model (newModelID). Bedrock allows a model change only
// between custom models of one base model; inferbox refuses every model
// change.
func (s *Service) UpdateProvisioned(ctx context.Context, ref, newName, newModelID string) (Provisioned, error) {
	d, err := s.lookup(ref)
	if err != nil {
		return Provisioned{}, err
	}
	s.pt.mu.Lock()
	rec := d.rec
	s.pt.mu.Unlock()
	if newModelID != "" {
		id := newModelID
		if _, rest, ok := strings.Cut(id, ":foundation-model/"); ok {
			id = rest
		}
		s.imp.mu.Lock()
		if _, canonical, ok := s.resolveModelLocked(id); ok {
			id = canonical // an imported model by name or ARN
		}
		s.imp.mu.Unlock()
		if id != rec.ModelID && strings.HasPrefix(rec.ModelID, ImportedRef) {
			// Bedrock allows a custom model's throughput to move to a sibling
			// model; an imported GGUF has no siblings here.
			return Provisioned{}, apierr.Validationf("The model of a Provisioned Throughput for an imported model can't be changed.")
		}
		if id != rec.ModelID {
			return Provisioned{}, apierr.Validationf("The model of a Provisioned Throughput for a base model can't be changed.")
		}
	}
	if newName != "" {
		if len(newName) > 63 {
			return Provisioned{}, apierr.Validationf("1 validation error detected: Value '%s' at 'desiredProvisionedModelName' failed to satisfy constraint: Member must have length less than or equal to 63", newName)
		}
		rec.Name = newName
	}
	rec.LastChanged = time.Now().UTC()
	if s.deps.Provisioned != nil {
		if err := s.deps.Provisioned.PutProvisioned(ctx, &rec); err != nil {
			if errors.Is(err, catalog.ErrExists) {
				return Provisioned{}, &apierr.Error{Kind: apierr.Validation, Code: "ConflictException", Message: fmt.Sprintf("Provisioned model with name %s already exists.", newName), Err: err}
			}
			return Provisioned{}, err
		}
	}
	s.pt.mu.Lock()
	d.rec.Name, d.rec.LastChanged = rec.Name, rec.LastChanged
	rec = d.rec
	s.pt.mu.Unlock()
	return rec, nil
}

// DeleteProvisioned stops and forgets a provisioned throughput; one whose
// commitment term has not ended is refused.
func (s *Service) DeleteProvisioned(ctx context.Context, ref string) error {
	d, err := s.lookup(ref)
	if err != nil {
		return err
	}
	s.pt.mu.Lock()
	rec := d.rec
	s.pt.mu.Unlock()
	if rec.Commitment != "" && time.Now().Before(rec.Expires) {
		return apierr.Validationf("You can't delete a Provisioned Throughput before the commitment term is over. The commitment term for %s ends at %s.",
			rec.Name, rec.Expires.Format(time.RFC3339))
	}
	if s.deps.Provisioned != nil {
		if err := s.deps.Provisioned.DeleteProvisioned(ctx, rec.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
	}
	s.pt.mu.Lock()
	delete(s.pt.pts, rec.ID)
	s.pt.mu.Unlock()
	if d.pool != nil {
		return d.pool.Close(ctx)
	}
	return nil
}

// ProvisionedModel returns the description of the model a provisioned
// throughput (id, name or ARN) serves, with ID set to the reference
// Generate routes (ProvisionedRef + id).
func (s *Service) ProvisionedModel(ref string) (Info, bool) {
	d, err := s.lookup(ref)
	if err != nil || d.m == nil {
		return Info{}, false
	}
	info := d.m.info
	info.ID = ProvisionedRef + d.rec.ID
	return info, true
}

// generateProvisioned runs req on a provisioned throughput's dedicated
// pool: no quota (the units are the limit), never behind on-demand work;
// beyond the pool's bounded queue it throttles.
func (s *Service) generateProvisioned(ctx context.Context, id string, req *Request, emit func(string) error) (Result, error) {
	t0 := time.Now()
	d, err := s.lookup(id)
	if err != nil || d.m == nil {
		return Result{}, apierr.Validationf("The provided model identifier is invalid.")
	}
	s.pt.mu.Lock()
	status := d.rec.Status
	modelID := d.rec.ModelID
	s.pt.mu.Unlock()
	if status != StatusInService {
		return Result{}, &apierr.Error{Kind: apierr.NotReady, Message: fmt.Sprintf("The provisioned model %s is not ready (status %s).", id, status)}
	}
	c, err := s.prepare(d.m, req, emit)
	if err != nil {
		return Result{}, err
	}
	res, err := d.pool.Invoke(ctx, &runtime.Request{Body: c, Size: -1}, req.Priority)
	if err != nil {
		return Result{}, s.poolError(err)
	}
	_ = res.Body.Close()
	return s.finish(t0, c, res, ModeProvisioned, modelID, req)
}

// closeProvisioned stops loading and every dedicated pool.
func (s *Service) closeProvisioned(ctx context.Context) []error {
	s.pt.stop()
	s.pt.wg.Wait()
	s.pt.mu.Lock()
	ds := make([]*dedicated, 0, len(s.pt.pts))
	for _, d := range s.pt.pts {
		ds = append(ds, d)
	}
	s.pt.mu.Unlock()
	var errs []error
	for _, d := range ds {
		if d.pool != nil {
			if err := d.pool.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}
