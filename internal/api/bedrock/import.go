package bedrock

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/genai"
)

// Custom model import: CreateModelImportJob, GetModelImportJob,
// ListModelImportJobs, GetImportedModel, ListImportedModels and
// DeleteImportedModel over genai's importer.

func (h *Handler) registerImport(mux *http.ServeMux) {
	mux.HandleFunc("POST /model-import-jobs", h.createImportJob)
	mux.HandleFunc("GET /model-import-jobs/{jobIdentifier}", h.getImportJob)
	mux.HandleFunc("GET /model-import-jobs", h.listImportJobs)
	mux.HandleFunc("GET /imported-models/{modelIdentifier}", h.getImported)
	mux.HandleFunc("GET /imported-models", h.listImported)
	mux.HandleFunc("DELETE /imported-models/{modelIdentifier}", h.deleteImported)
}

func (h *Handler) importedArn(id string) string {
	return "arn:aws:bedrock:" + h.region + ":" + h.account + ":imported-model/" + id
}

func (h *Handler) importJobArn(id string) string {
	return "arn:aws:bedrock:" + h.region + ":" + h.account + ":model-import-job/" + id
}

// modelArn is the ARN of a provisioned throughput's model: a
// foundation-model ARN, or an imported-model ARN.
func (h *Handler) modelArn(modelID string) string {
	if id, ok := strings.CutPrefix(modelID, genai.ImportedRef); ok {
		return h.importedArn(id)
	}
	return h.arn(modelID)
}

type modelDataSource struct {
	S3DataSource struct {
		S3URI string `json:"s3Uri"`
	} `json:"s3DataSource"`
}

func dataSource(uri string) modelDataSource {
	var d modelDataSource
	d.S3DataSource.S3URI = uri
	return d
}

// createImportJob is CreateModelImportJob: 201 {jobArn}.
func (h *Handler) createImportJob(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	var in struct {
		JobName           string           `json:"jobName"`
		ImportedModelName string           `json:"importedModelName"`
		RoleArn           string           `json:"roleArn"`
		ModelDataSource   *modelDataSource `json:"modelDataSource"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		h.controlFail(w, badf("Malformed input request, please reformat your input and try again."))
		return
	}
	if in.ModelDataSource == nil {
		h.controlFail(w, badf("1 validation error detected: Value null at 'modelDataSource' failed to satisfy constraint: Member must not be null"))
		return
	}
	job, err := h.svc.CreateImport(r.Context(), genai.ImportRequest{JobName: in.JobName, ImportedModelName: in.ImportedModelName,
		RoleArn: in.RoleArn, SourceURI: in.ModelDataSource.S3DataSource.S3URI})
	if err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusCreated, "application/json", map[string]string{"jobArn": h.importJobArn(job.ID)})
}

// importJob is GetModelImportJob's output and, without roleArn and
// modelDataSource, ModelImportJobSummary.
type importJob struct {
	JobArn            string           `json:"jobArn"`
	JobName           string           `json:"jobName"`
	ImportedModelName string           `json:"importedModelName"`
	ImportedModelArn  string           `json:"importedModelArn,omitempty"`
	RoleArn           string           `json:"roleArn,omitempty"`
	ModelDataSource   *modelDataSource `json:"modelDataSource,omitempty"`
	Status            string           `json:"status"`
	FailureMessage    string           `json:"failureMessage,omitempty"`
	CreationTime      string           `json:"creationTime"`
	LastModifiedTime  string           `json:"lastModifiedTime"`
	EndTime           string           `json:"endTime,omitempty"`
}

func (h *Handler) importJob(j genai.ImportJob, full bool) importJob {
	out := importJob{JobArn: h.importJobArn(j.ID), JobName: j.Name, ImportedModelName: j.ImportedModelName,
		Status: j.Status, FailureMessage: j.Failure, CreationTime: stamp(j.Created), LastModifiedTime: stamp(j.LastChanged)}
	if j.ImportedModelID != "" {
		out.ImportedModelArn = h.importedArn(j.ImportedModelID)
	}
	if !j.Ended.IsZero() {
		out.EndTime = stamp(j.Ended)
	}
	if full {
		d := dataSource(j.SourceURI)
		out.RoleArn, out.ModelDataSource = j.RoleArn, &d
	}
	return out
}

func (h *Handler) getImportJob(w http.ResponseWriter, r *http.Request) {
	j, err := h.svc.GetImportJob(r.PathValue("jobIdentifier"))
	if err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", h.importJob(j, true))
}

// listing is the filters, order and paging ListModelImportJobs and
// ListImportedModels share.
type listing struct {
	nameContains  string
	after, before time.Time
	descending    bool
	start, max    int
}

func parseListing(r *http.Request) (listing, error) {
	q := r.URL.Query()
	l := listing{nameContains: q.Get("nameContains"), descending: q.Get("sortOrder") != "Ascending"}
	for key, dst := range map[string]*time.Time{"creationTimeAfter": &l.after, "creationTimeBefore": &l.before} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return l, badf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be a timestamp", v, key)
			}
			*dst = t
		}
	}
	if t := q.Get("nextToken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return l, badf("The nextToken is invalid.")
		}
		l.start = n
	}
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return l, badf("1 validation error detected: Value '%s' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000", v)
		}
		l.max = n
	}
	return l, nil
}

func (l listing) keep(name string, created time.Time) bool {
	if l.nameContains != "" && !strings.Contains(name, l.nameContains) {
		return false
	}
	if !l.after.IsZero() && !created.After(l.after) {
		return false
	}
	if !l.before.IsZero() && !created.Before(l.before) {
		return false
	}
	return true
}

// page orders all (oldest first as given) and cuts the page; the next
// token is the offset of the next page.
func page[T any](l listing, all []T) ([]T, string, error) {
	if l.descending {
		slices.Reverse(all)
	}
	if l.start > len(all) {
		return nil, "", badf("The nextToken is invalid.")
	}
	out := all[l.start:]
	if l.max > 0 && l.max < len(out) {
		return append([]T{}, out[:l.max]...), strconv.Itoa(l.start + l.max), nil
	}
	return append([]T{}, out...), "", nil
}

// listImportJobs is ListModelImportJobs (statusEquals, nameContains,
// creation-time bounds, sortOrder on creation time, paging).
func (h *Handler) listImportJobs(w http.ResponseWriter, r *http.Request) {
	l, err := parseListing(r)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	status := r.URL.Query().Get("statusEquals")
	var all []importJob
	for _, j := range h.svc.ListImportJobs() {
		if (status == "" || status == j.Status) && l.keep(j.Name, j.Created) {
			all = append(all, h.importJob(j, false))
		}
	}
	out, next, err := page(l, all)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	resp := map[string]any{"modelImportJobSummaries": out}
	if next != "" {
		resp["nextToken"] = next
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", resp)
}

// importedModel is GetImportedModel's output and, with fewer members,
// ImportedModelSummary. The content hash and size are inferbox
// extensions.
type importedModel struct {
	ModelArn          string           `json:"modelArn"`
	ModelName         string           `json:"modelName"`
	JobName           string           `json:"jobName,omitempty"`
	JobArn            string           `json:"jobArn,omitempty"`
	ModelDataSource   *modelDataSource `json:"modelDataSource,omitempty"`
	CreationTime      string           `json:"creationTime"`
	ModelArchitecture string           `json:"modelArchitecture"`
	InstructSupported bool             `json:"instructSupported"`
	CustomModelUnits  *customUnits     `json:"customModelUnits,omitempty"`
	SHA256            string           `json:"inferboxSha256,omitempty"`
	SizeBytes         int64            `json:"inferboxSizeBytes,omitempty"`
}

type customUnits struct {
	PerCopy int    `json:"customModelUnitsPerModelCopy"`
	Version string `json:"customModelUnitsVersion"`
}

func (h *Handler) importedModel(m genai.ImportedModel, full bool) importedModel {
	out := importedModel{ModelArn: h.importedArn(m.ID), ModelName: m.Name, CreationTime: stamp(m.Created),
		ModelArchitecture: m.Architecture, InstructSupported: m.InstructSupported}
	if full {
		d := dataSource(m.SourceURI)
		out.JobName, out.JobArn, out.ModelDataSource = m.JobName, h.importJobArn(m.JobID), &d
		// One model copy is one instance of a provisioned model unit.
		out.CustomModelUnits = &customUnits{PerCopy: genai.InstancesPerUnit, Version: "1.0"}
		out.SHA256, out.SizeBytes = m.SHA256, m.SizeBytes
	}
	return out
}

func (h *Handler) getImported(w http.ResponseWriter, r *http.Request) {
	m, err := h.svc.GetImported(r.PathValue("modelIdentifier"))
	if err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", h.importedModel(m, true))
}

// listImported is ListImportedModels (nameContains, creation-time bounds,
// sortOrder on creation time, paging).
func (h *Handler) listImported(w http.ResponseWriter, r *http.Request) {
	l, err := parseListing(r)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	var all []importedModel
	for _, m := range h.svc.ListImported() {
		if l.keep(m.Name, m.Created) {
			all = append(all, h.importedModel(m, false))
		}
	}
	out, next, err := page(l, all)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	resp := map[string]any{"modelSummaries": out}
	if next != "" {
		resp["nextToken"] = next
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", resp)
}

func (h *Handler) deleteImported(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteImported(r.Context(), r.PathValue("modelIdentifier")); err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", struct{}{})
}
