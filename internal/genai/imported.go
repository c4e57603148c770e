package genai

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/runtime"
)

// Custom model import (Bedrock's CreateModelImportJob): a GGUF file in
// object storage (or on the local disk) is copied into Config.ImportDir
// under its SHA-256, checked by loading it once, and registered as an
// imported model. An imported model has no on-demand pool: it is served
// only through a provisioned throughput created on it (the rule;
// real Bedrock has since added on-demand inference for imports).

// Import job statuses, as Bedrock names them.
const (
	ImportInProgress = "InProgress"
	ImportCompleted  = "Completed"
	ImportFailed     = "Failed"
)

// ImportedRef prefixes an imported model's id where a model id is
// expected: a provisioned throughput's ModelID, an Info.ID.
const ImportedRef = "imported-model/"

// CustomPriceModel is the price-book model a provisioned throughput on
// an imported model is billed as (internal/pricebook's "custom" row).
const CustomPriceModel = "custom"

// ImportedModel and ImportJob are the stored records.
type (
	ImportedModel = catalog.ImportedModel
	ImportJob     = catalog.ModelImportJob
)

// ImportStore keeps imported models and import jobs across restarts
// (*catalog.Store).
type ImportStore interface {
	CreateImportJob(ctx context.Context, j *ImportJob) error
	PutImportJob(ctx context.Context, j *ImportJob) error
	ListImportJobs(ctx context.Context) ([]ImportJob, error)
	CreateImportedModel(ctx context.Context, m *ImportedModel) error
	DeleteImportedModel(ctx context.Context, id string) error
	ListImportedModels(ctx context.Context) ([]ImportedModel, error)
}

// ImportSource reads the model data an import names: s3:// URIs, file://
// URIs and plain paths (*objstore.Resolver).
type ImportSource interface {
	Open(ctx context.Context, uri string, rng *objstore.Range) (io.ReadCloser, objstore.Info, error)
	List(ctx context.Context, prefixURI string, opts objstore.ListOptions) (objstore.ListPage, error)
}

// Errors callers branch on (all are *apierr.Error too).
var (
	// ErrImportedNotFound: no imported model has the name, id or ARN.
	ErrImportedNotFound = errors.New("genai: imported model not found")
	// ErrImportJobNotFound: no import job has the name, id or ARN.
	ErrImportJobNotFound = errors.New("genai: model import job not found")
	// ErrOnDemandCustom: a custom model was named for on-demand inference.
	ErrOnDemandCustom = errors.New("genai: custom model needs provisioned throughput")
)

// OnDemandCustomMessage is Bedrock's ValidationException text for an
// on-demand invocation of a model that only provisioned throughput serves
// (as reported in konveyor/kai#411).
const OnDemandCustomMessage = "The provided model doesn't support on-demand throughput."

// importer owns the imported models and the import jobs. Lock order:
// importer.mu before provisioner.mu.
type importer struct {
	mu     sync.Mutex
	models map[string]*importedEntry // by id
	jobs   map[string]*ImportJob     // by id
	bg     context.Context           // cancelled by Close
	stop   context.CancelFunc
	wg     sync.WaitGroup // running jobs
}

type importedEntry struct {
	rec ImportedModel
	m   *model
}

func newImporter() *importer {
	bg, stop := context.WithCancel(context.Background())
	return &importer{models: map[string]*importedEntry{}, jobs: map[string]*ImportJob{}, bg: bg, stop: stop}
}

// ImportRequest is CreateModelImportJob's input.
type ImportRequest struct {
	JobName           string
	ImportedModelName string
	RoleArn           string
	SourceURI         string // modelDataSource.s3DataSource.s3Uri
}

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$`)

func validName(member, v string) error {
	if v == "" {
		return apierr.Validationf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	if len(v) > 63 {
		return apierr.Validationf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to 63", v, member)
	}
	if !namePattern.MatchString(v) {
		return apierr.Validationf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([0-9a-zA-Z][_-]?){1,63}$", v, member)
	}
	return nil
}

// CreateImport starts an import job: it returns the job at once with
// status InProgress; the copy and check run in the background and the
// job ends Completed (the model is registered) or Failed (with why).
func (s *Service) CreateImport(ctx context.Context, in ImportRequest) (ImportJob, error) {
	if err := validName("jobName", in.JobName); err != nil {
		return ImportJob{}, err
	}
	if err := validName("importedModelName", in.ImportedModelName); err != nil {
		return ImportJob{}, err
	}
	if in.RoleArn == "" {
		return ImportJob{}, apierr.Validationf("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	}
	if in.SourceURI == "" {
		return ImportJob{}, apierr.Validationf("1 validation error detected: Value null at 'modelDataSource.s3DataSource.s3Uri' failed to satisfy constraint: Member must not be null")
	}
	if s.cfg.ImportDir == "" || s.deps.Objects == nil {
		return ImportJob{}, &apierr.Error{Kind: apierr.Validation, Message: "Model import is not configured on this server."}
	}
	imp := s.imp
	now := time.Now().UTC()
	job := ImportJob{ID: newID(), Name: in.JobName, ImportedModelName: in.ImportedModelName, RoleArn: in.RoleArn,
		SourceURI: in.SourceURI, Status: ImportInProgress, Created: now, LastChanged: now}
	imp.mu.Lock()
	defer imp.mu.Unlock()
	for _, j := range imp.jobs {
		if strings.EqualFold(j.Name, in.JobName) {
			return ImportJob{}, apierr.Validationf("The provided job name is currently in use.")
		}
	}
	if imp.nameInUseLocked(in.ImportedModelName) {
		return ImportJob{}, &apierr.Error{Kind: apierr.Validation, Code: "ConflictException",
			Message: fmt.Sprintf("A model with the name %s already exists.", in.ImportedModelName)}
	}
	if s.deps.Imports != nil {
		if err := s.deps.Imports.CreateImportJob(ctx, &job); err != nil {
			if errors.Is(err, catalog.ErrExists) {
				return ImportJob{}, apierr.Validationf("The provided job name is currently in use.")
			}
			return ImportJob{}, err
		}
	}
	j := job
	imp.jobs[job.ID] = &j
	s.runImport(job)
	return job, nil
}

// nameInUseLocked: an imported model has the name, or a running job will
// create one with it.
func (imp *importer) nameInUseLocked(name string) bool {
	for _, e := range imp.models {
		if strings.EqualFold(e.rec.Name, name) {
			return true
		}
	}
	for _, j := range imp.jobs {
		if j.Status == ImportInProgress && strings.EqualFold(j.ImportedModelName, name) {
			return true
		}
	}
	return false
}

// runImport runs job in the background under the importer's context.
func (s *Service) runImport(job ImportJob) {
	imp := s.imp
	imp.wg.Add(1)
	go func() {
		defer imp.wg.Done()
		rec, err := s.importModel(imp.bg, job)
		if imp.bg.Err() != nil {
			return // shutting down: the job resumes after a restart
		}
		imp.mu.Lock()
		j := imp.jobs[job.ID]
		now := time.Now().UTC()
		j.LastChanged, j.Ended = now, now
		if err != nil {
			j.Status, j.Failure = ImportFailed, err.Error()
		} else {
			j.Status, j.ImportedModelID = ImportCompleted, rec.ID
		}
		done := *j
		imp.mu.Unlock()
		s.log.Info("model import job", "job", done.Name, "model", done.ImportedModelName, "status", done.Status, "failure", done.Failure)
		if s.deps.Imports != nil {
			if err := s.deps.Imports.PutImportJob(imp.bg, &done); err != nil {
				s.log.Warn("store model import job", "job", done.ID, "err", err)
			}
		}
	}()
}

// importModel copies job's source into the import directory, checks it
// loads, and registers the model. Its errors are the job's failure
// message (they name the source, never the data directory).
func (s *Service) importModel(ctx context.Context, job ImportJob) (ImportedModel, error) {
	uri, err := s.findGGUF(ctx, job.SourceURI)
	if err != nil {
		return ImportedModel{}, err
	}
	path, sum, size, err := s.copyIn(ctx, uri)
	if err != nil {
		return ImportedModel{}, err
	}
	hide := func(err error) error {
		return errors.New(strings.ReplaceAll(err.Error(), path, uri))
	}
	// The loader's own check: format, architecture, tensor types, tokenizer.
	rm, err := s.deps.Loader.Load(ctx, runtime.Spec{Kind: "llama", Image: job.ImportedModelName, ModelDir: path, Threads: 1, Logger: s.log})
	if err != nil {
		s.removeUnused(path)
		return ImportedModel{}, failf("The model file %s could not be loaded: %w", uri, hide(err))
	}
	_ = rm.Close()
	rec := ImportedModel{ID: newID(), Name: job.ImportedModelName, JobID: job.ID, JobName: job.Name,
		SourceURI: job.SourceURI, Path: path, SHA256: sum, SizeBytes: size, Created: time.Now().UTC()}
	m, err := s.importedModel(&rec)
	if err != nil {
		s.removeUnused(path)
		return ImportedModel{}, failf("The model file %s could not be read: %w", uri, hide(err))
	}
	s.imp.mu.Lock()
	defer s.imp.mu.Unlock()
	if s.deps.Imports != nil {
		if err := s.deps.Imports.CreateImportedModel(ctx, &rec); err != nil {
			if errors.Is(err, catalog.ErrExists) {
				return ImportedModel{}, failf("A model with the name %s already exists.", rec.Name)
			}
			return ImportedModel{}, failf("The model could not be registered: %w", err)
		}
	}
	s.imp.models[rec.ID] = &importedEntry{rec: rec, m: m}
	return rec, nil
}

// importedModel builds the serving description of rec (filling in its
// architecture and instructSupported from the file's header).
func (s *Service) importedModel(rec *ImportedModel) (*model, error) {
	meta, err := readMeta(s.deps.Registry, rec.Path)
	if err != nil {
		return nil, err
	}
	chat, err := newChatFormat("", meta.template, meta.arch, meta.bos, meta.eos)
	if err != nil {
		return nil, err
	}
	rec.Architecture = meta.arch
	rec.InstructSupported = meta.template != ""
	id := ImportedRef + rec.ID
	info := Info{ID: id, Name: rec.Name, Provider: "inferbox", Architecture: meta.arch, ContextLength: meta.context,
		ChatFormat: chat.name, HasTemplate: meta.template != "", InferenceTypes: []string{"PROVISIONED"}, Modalities: []string{"TEXT"}}
	return &model{info: info, spec: ModelSpec{ID: id, Path: rec.Path}, chat: chat}, nil
}

// findGGUF resolves a source to one .gguf object: the URI itself when it
// names a .gguf file, else the one .gguf under it as a prefix.
func (s *Service) findGGUF(ctx context.Context, uri string) (string, error) {
	if strings.HasSuffix(strings.ToLower(uri), ".gguf") {
		return uri, nil
	}
	prefix := uri
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var found []string
	opts := objstore.ListOptions{}
	for {
		page, err := s.deps.Objects.List(ctx, prefix, opts)
		if errors.Is(err, objstore.ErrNotFound) || errors.Is(err, objstore.ErrNoSuchBucket) {
			return uri, nil // Open reports it
		}
		if err != nil {
			return "", failf("The model data source %s could not be listed: %w", uri, err)
		}
		for _, o := range page.Objects {
			if strings.HasSuffix(strings.ToLower(o.Key), ".gguf") {
				found = append(found, o.URI)
			}
		}
		if page.NextToken == "" {
			break
		}
		opts.Token = page.NextToken
	}
	switch len(found) {
	case 0:
		return uri, nil // not a prefix of any .gguf: perhaps an object itself
	case 1:
		return found[0], nil
	}
	return "", failf("The model data source %s holds %d .gguf files; expected exactly one.", uri, len(found))
}

// copyIn streams uri into the import directory as <sha256>.gguf (kept if
// already there) and returns its path, hash and size.
func (s *Service) copyIn(ctx context.Context, uri string) (string, string, int64, error) {
	rc, _, err := s.deps.Objects.Open(ctx, uri, nil)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) || errors.Is(err, objstore.ErrNoSuchBucket) {
			if strings.HasSuffix(strings.ToLower(uri), ".gguf") {
				return "", "", 0, failf("The model data source %s does not exist.", uri)
			}
			return "", "", 0, failf("The model data source %s does not exist (no object, and no .gguf file under it as a prefix).", uri)
		}
		return "", "", 0, failf("The model data source %s could not be read: %w", uri, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(s.cfg.ImportDir, 0o755); err != nil {
		return "", "", 0, failf("The model could not be stored: %w", err)
	}
	tmp, err := os.CreateTemp(s.cfg.ImportDir, ".import-*")
	if err != nil {
		return "", "", 0, failf("The model could not be stored: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", 0, failf("The model data source %s could not be copied: %w", uri, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	path := filepath.Join(s.cfg.ImportDir, sum+".gguf")
	if _, err := os.Stat(path); err == nil {
		return path, sum, n, nil // the same content was imported before
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", "", 0, failf("The model could not be stored: %w", err)
	}
	return path, sum, n, nil
}

// removeUnused deletes a content-addressed copy no imported model uses.
func (s *Service) removeUnused(path string) {
	s.imp.mu.Lock()
	defer s.imp.mu.Unlock()
	s.removeUnusedLocked(path)
}

func (s *Service) removeUnusedLocked(path string) {
	for _, e := range s.imp.models {
		if e.rec.Path == path {
			return
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove imported model file", "path", path, "err", err)
	}
}

// RestoreImported brings back the stored imported models and resumes the
// import jobs a shutdown interrupted. Call it before RestoreProvisioned
// (provisioned throughputs may serve imported models).
func (s *Service) RestoreImported(ctx context.Context) error {
	if s.deps.Imports == nil {
		return nil
	}
	recs, err := s.deps.Imports.ListImportedModels(ctx)
	if err != nil {
		return err
	}
	jobs, err := s.deps.Imports.ListImportJobs(ctx)
	if err != nil {
		return err
	}
	imp := s.imp
	imp.mu.Lock()
	defer imp.mu.Unlock()
	for _, rec := range recs {
		m, err := s.importedModel(&rec)
		if err != nil {
			// Kept listed (it can still be deleted) but unservable.
			s.log.Warn("imported model file unreadable", "model", rec.Name, "err", err)
		}
		imp.models[rec.ID] = &importedEntry{rec: rec, m: m}
	}
	for _, j := range jobs {
		j := j
		imp.jobs[j.ID] = &j
		if j.Status != ImportInProgress {
			continue
		}
		// Stopped between registering the model and recording the end.
		if e, ok := imp.modelOfJobLocked(j.ID); ok {
			j.Status, j.ImportedModelID, j.Ended, j.LastChanged = ImportCompleted, e.rec.ID, e.rec.Created, e.rec.Created
			if err := s.deps.Imports.PutImportJob(ctx, &j); err != nil {
				return err
			}
			continue
		}
		s.runImport(j)
	}
	return nil
}

func (imp *importer) modelOfJobLocked(jobID string) (*importedEntry, bool) {
	for _, e := range imp.models {
		if e.rec.JobID == jobID {
			return e, true
		}
	}
	return nil, false
}

// lookupImportedLocked finds an imported model by id, name, ARN or
// ImportedRef+id.
func (imp *importer) lookupImportedLocked(ref string) (*importedEntry, bool) {
	if _, rest, ok := strings.Cut(ref, ":imported-model/"); ok {
		ref = rest
	}
	ref = strings.TrimPrefix(ref, ImportedRef)
	if e, ok := imp.models[ref]; ok {
		return e, true
	}
	for _, e := range imp.models {
		if e.rec.Name == ref {
			return e, true
		}
	}
	return nil, false
}

func importedNotFound(ref string) error {
	return &apierr.Error{Kind: apierr.NotFound, Message: fmt.Sprintf("The specified model %s could not be found.", ref), Err: ErrImportedNotFound}
}

// GetImported describes the imported model with the name, id or ARN.
func (s *Service) GetImported(ref string) (ImportedModel, error) {
	s.imp.mu.Lock()
	defer s.imp.mu.Unlock()
	e, ok := s.imp.lookupImportedLocked(ref)
	if !ok {
		return ImportedModel{}, importedNotFound(ref)
	}
	return e.rec, nil
}

// ListImported describes every imported model, oldest first.
func (s *Service) ListImported() []ImportedModel {
	s.imp.mu.Lock()
	out := make([]ImportedModel, 0, len(s.imp.models))
	for _, e := range s.imp.models {
		out = append(out, e.rec)
	}
	s.imp.mu.Unlock()
	byCreation(out, func(m *ImportedModel) (time.Time, string) { return m.Created, m.ID })
	return out
}

// DeleteImported forgets an imported model and removes its copy (unless
// another imported model has the same content). It is refused while a
// provisioned throughput serves the model.
func (s *Service) DeleteImported(ctx context.Context, ref string) error {
	imp := s.imp
	imp.mu.Lock()
	defer imp.mu.Unlock()
	e, ok := imp.lookupImportedLocked(ref)
	if !ok {
		return importedNotFound(ref)
	}
	s.pt.mu.Lock()
	var users []string
	for _, d := range s.pt.pts {
		if d.rec.ModelID == ImportedRef+e.rec.ID {
			users = append(users, d.rec.Name)
		}
	}
	s.pt.mu.Unlock()
	if len(users) > 0 {
		sort.Strings(users)
		return apierr.Validationf("The model %s is in use by the Provisioned Throughput %s. Delete the Provisioned Throughput before deleting the model.",
			e.rec.Name, strings.Join(users, ", "))
	}
	if s.deps.Imports != nil {
		if err := s.deps.Imports.DeleteImportedModel(ctx, e.rec.ID); err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return err
		}
	}
	delete(imp.models, e.rec.ID)
	s.removeUnusedLocked(e.rec.Path)
	return nil
}

// GetImportJob describes the import job with the name, id or ARN.
func (s *Service) GetImportJob(ref string) (ImportJob, error) {
	if _, rest, ok := strings.Cut(ref, ":model-import-job/"); ok {
		ref = rest
	}
	s.imp.mu.Lock()
	defer s.imp.mu.Unlock()
	if j, ok := s.imp.jobs[ref]; ok {
		return *j, nil
	}
	for _, j := range s.imp.jobs {
		if j.Name == ref {
			return *j, nil
		}
	}
	return ImportJob{}, &apierr.Error{Kind: apierr.NotFound, Message: fmt.Sprintf("The specified job %s could not be found.", ref), Err: ErrImportJobNotFound}
}

// ListImportJobs describes every import job, oldest first.
func (s *Service) ListImportJobs() []ImportJob {
	s.imp.mu.Lock()
	out := make([]ImportJob, 0, len(s.imp.jobs))
	for _, j := range s.imp.jobs {
		out = append(out, *j)
	}
	s.imp.mu.Unlock()
	byCreation(out, func(j *ImportJob) (time.Time, string) { return j.Created, j.ID })
	return out
}

// OnDemandError is the error for an on-demand request naming id, which
// is not a foundation model: Bedrock's refusal when id names an imported
// model, else the invalid-identifier error.
func (s *Service) OnDemandError(id string) error {
	s.imp.mu.Lock()
	_, ok := s.imp.lookupImportedLocked(id)
	s.imp.mu.Unlock()
	if ok {
		return &apierr.Error{Kind: apierr.Validation, Message: OnDemandCustomMessage, Err: ErrOnDemandCustom}
	}
	return &apierr.Error{Kind: apierr.NotFound, Message: "The provided model identifier is invalid.", Err: ErrUnknownModel}
}

// resolveModel finds the model a provisioned throughput is created on: a
// foundation model id, or an imported model's name, id or ARN. It
// returns the model and its canonical id (ImportedRef+id for imports).
// The caller holds importer.mu.
func (s *Service) resolveModelLocked(ref string) (*model, string, bool) {
	if m, ok := s.models[ref]; ok {
		return m, ref, true
	}
	e, ok := s.imp.lookupImportedLocked(ref)
	if !ok || e.m == nil {
		return nil, "", false
	}
	return e.m, ImportedRef + e.rec.ID, true
}

// priceModel is the price-book model of a provisioned throughput's
// instances: the foundation model id, or CustomPriceModel for imports.
func priceModel(modelID string) string {
	if strings.HasPrefix(modelID, ImportedRef) {
		return CustomPriceModel
	}
	return modelID
}

// closeImports stops running import jobs (they resume after a restart).
func (s *Service) closeImports() {
	s.imp.stop()
	s.imp.wg.Wait()
}

// failf makes an import job's failure message: a sentence for people, as
// Bedrock words its messages (hence capitalised), wrapping any %w cause.
func failf(format string, args ...any) error { return fmt.Errorf(format, args...) }
