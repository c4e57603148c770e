package bedrock

import (
	"net/http"
	"slices"
	"strings"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/genai"
)

// modelSummary is FoundationModelSummary / FoundationModelDetails. The
// chat format in use is an inferbox extension (SDKs ignore the member).
type modelSummary struct {
	ModelArn                   string         `json:"modelArn"`
	ModelID                    string         `json:"modelId"`
	ModelName                  string         `json:"modelName"`
	ProviderName               string         `json:"providerName"`
	InputModalities            []string       `json:"inputModalities"`
	OutputModalities           []string       `json:"outputModalities"`
	ResponseStreamingSupported bool           `json:"responseStreamingSupported"`
	CustomizationsSupported    []string       `json:"customizationsSupported"`
	InferenceTypesSupported    []string       `json:"inferenceTypesSupported"`
	ModelLifecycle             map[string]any `json:"modelLifecycle"`
	ContextLength              int            `json:"inferboxContextLength"`
	ChatFormat                 string         `json:"inferboxChatFormat"`
}

func (h *Handler) summary(m genai.Info) modelSummary {
	return modelSummary{
		ModelArn: h.arn(m.ID), ModelID: m.ID, ModelName: m.Name, ProviderName: m.Provider,
		InputModalities: m.Modalities, OutputModalities: m.Modalities, ResponseStreamingSupported: true,
		CustomizationsSupported: []string{}, InferenceTypesSupported: m.InferenceTypes,
		ModelLifecycle: map[string]any{"status": "ACTIVE"}, ContextLength: m.ContextLength, ChatFormat: m.ChatFormat,
	}
}

// listModels is ListFoundationModels with its byProvider,
// byOutputModality and byInferenceType filters.
func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := []modelSummary{}
	for _, m := range h.svc.Models() {
		if p := q.Get("byProvider"); p != "" && !strings.EqualFold(p, m.Provider) {
			continue
		}
		if o := q.Get("byOutputModality"); o != "" && !slices.Contains(m.Modalities, o) {
			continue
		}
		if t := q.Get("byInferenceType"); t != "" && !slices.Contains(m.InferenceTypes, t) {
			continue
		}
		if q.Get("byCustomizationType") != "" {
			continue // no model supports customization
		}
		out = append(out, h.summary(m))
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", map[string]any{"modelSummaries": out})
}

// getModel is GetFoundationModel (by id or foundation-model ARN).
func (h *Handler) getModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("modelIdentifier")
	if _, rest, ok := strings.Cut(id, ":foundation-model/"); ok {
		id = rest
	}
	m, ok := h.svc.Model(id)
	if !ok {
		h.fail(w, apierr.Validationf("The provided model identifier is invalid."))
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", map[string]any{"modelDetails": h.summary(m)})
}
