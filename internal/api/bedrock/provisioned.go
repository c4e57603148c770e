package bedrock

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/genai"
)

// controlCodes is the control plane's table: a missing provisioned
// throughput is a 404 ResourceNotFoundException there.
var controlCodes = func() awsproto.ErrorCodes {
	c := maps.Clone(codes)
	c[apierr.NotFound] = struct {
		Status int
		Code   string
	}{404, "ResourceNotFoundException"}
	return c
}()

// WithAccount sets the account id that appears in provisioned-model ARNs.
func (h *Handler) WithAccount(id string) *Handler {
	h.account = id
	return h
}

func (h *Handler) registerProvisioned(mux *http.ServeMux) {
	mux.HandleFunc("POST /provisioned-model-throughput", h.createPT)
	mux.HandleFunc("GET /provisioned-model-throughput/{id}", h.getPT)
	mux.HandleFunc("PATCH /provisioned-model-throughput/{id}", h.updatePT)
	mux.HandleFunc("DELETE /provisioned-model-throughput/{id}", h.deletePT)
	mux.HandleFunc("GET /provisioned-model-throughputs", h.listPT)
}

func (h *Handler) ptArn(id string) string {
	return "arn:aws:bedrock:" + h.region + ":" + h.account + ":provisioned-model/" + id
}

// ptSummary is ProvisionedModelSummary / GetProvisionedModelThroughput's
// output.
type ptSummary struct {
	ProvisionedModelName     string `json:"provisionedModelName"`
	ProvisionedModelArn      string `json:"provisionedModelArn"`
	ModelArn                 string `json:"modelArn"`
	DesiredModelArn          string `json:"desiredModelArn"`
	FoundationModelArn       string `json:"foundationModelArn"`
	ModelUnits               int    `json:"modelUnits"`
	DesiredModelUnits        int    `json:"desiredModelUnits"`
	Status                   string `json:"status"`
	FailureMessage           string `json:"failureMessage,omitempty"`
	CommitmentDuration       string `json:"commitmentDuration,omitempty"`
	CommitmentExpirationTime string `json:"commitmentExpirationTime,omitempty"`
	CreationTime             string `json:"creationTime"`
	LastModifiedTime         string `json:"lastModifiedTime"`
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (h *Handler) ptSummary(p genai.Provisioned) ptSummary {
	s := ptSummary{
		ProvisionedModelName: p.Name, ProvisionedModelArn: h.ptArn(p.ID),
		ModelArn: h.modelArn(p.ModelID), DesiredModelArn: h.modelArn(p.ModelID), FoundationModelArn: h.modelArn(p.ModelID),
		ModelUnits: p.ModelUnits, DesiredModelUnits: p.ModelUnits, Status: p.Status, FailureMessage: p.Failure,
		CommitmentDuration: p.Commitment, CreationTime: stamp(p.Created), LastModifiedTime: stamp(p.LastChanged),
	}
	if !p.Expires.IsZero() {
		s.CommitmentExpirationTime = stamp(p.Expires)
	}
	return s
}

func (h *Handler) controlFail(w http.ResponseWriter, err error) {
	awsproto.WriteRESTError(w, controlCodes, err, h.log)
}

func modelIDOf(ref string) string {
	if _, rest, ok := strings.Cut(ref, ":foundation-model/"); ok {
		return rest
	}
	return ref
}

// createPT is CreateProvisionedModelThroughput: 201 {provisionedModelArn}.
func (h *Handler) createPT(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	var in struct {
		ModelUnits           *int   `json:"modelUnits"`
		ProvisionedModelName string `json:"provisionedModelName"`
		ModelID              string `json:"modelId"`
		CommitmentDuration   string `json:"commitmentDuration"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		h.controlFail(w, badf("Malformed input request, please reformat your input and try again."))
		return
	}
	if in.ModelUnits == nil {
		h.controlFail(w, badf("1 validation error detected: Value null at 'modelUnits' failed to satisfy constraint: Member must not be null"))
		return
	}
	p, err := h.svc.CreateProvisioned(r.Context(), in.ProvisionedModelName, modelIDOf(in.ModelID), *in.ModelUnits, in.CommitmentDuration)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusCreated, "application/json", map[string]string{"provisionedModelArn": h.ptArn(p.ID)})
}

func (h *Handler) getPT(w http.ResponseWriter, r *http.Request) {
	p, err := h.svc.GetProvisioned(r.PathValue("id"))
	if err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", h.ptSummary(p))
}

// listPT is ListProvisionedModelThroughputs with its filters (statusEquals,
// nameContains, modelArnEquals), sortOrder on creation time and paging.
func (h *Handler) listPT(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var all []ptSummary
	for _, p := range h.svc.ListProvisioned() {
		s := h.ptSummary(p)
		if v := q.Get("statusEquals"); v != "" && v != p.Status {
			continue
		}
		if v := q.Get("nameContains"); v != "" && !strings.Contains(p.Name, v) {
			continue
		}
		if v := q.Get("modelArnEquals"); v != "" && v != s.ModelArn {
			continue
		}
		all = append(all, s)
	}
	if q.Get("sortOrder") != "Ascending" { // Bedrock's default is Descending
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	start := 0
	if t := q.Get("nextToken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(all) {
			h.controlFail(w, badf("The nextToken is invalid."))
			return
		}
		start = n
	}
	out := map[string]any{}
	page := all[start:]
	if m, err := strconv.Atoi(q.Get("maxResults")); err == nil && m > 0 && m < len(page) {
		page = page[:m]
		out["nextToken"] = strconv.Itoa(start + m)
	}
	out["provisionedModelSummaries"] = append([]ptSummary{}, page...)
	awsproto.WriteJSON(w, http.StatusOK, "application/json", out)
}

func (h *Handler) updatePT(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		h.controlFail(w, err)
		return
	}
	var in struct {
		DesiredProvisionedModelName string `json:"desiredProvisionedModelName"`
		DesiredModelID              string `json:"desiredModelId"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		h.controlFail(w, badf("Malformed input request, please reformat your input and try again."))
		return
	}
	if _, err := h.svc.UpdateProvisioned(r.Context(), r.PathValue("id"), in.DesiredProvisionedModelName, in.DesiredModelID); err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", struct{}{})
}

func (h *Handler) deletePT(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteProvisioned(r.Context(), r.PathValue("id")); err != nil {
		h.controlFail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", struct{}{})
}
