package bedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

// provider is one model family's InvokeModel body: how a request reads
// and how the reply and the stream chunks are written. All map onto the
// same engine; bodyFor picks one by the model id's provider prefix, as
// Bedrock does.
type provider interface {
	// parse validates a request body (Bedrock's schema wording) and
	// returns the prompt and sampling parameters.
	parse(body []byte, ctxLen int) (string, llama.Params, error)
	// reply is the InvokeModel response body.
	reply(res genai.Result) any
	// chunk is a stream chunk carrying a piece of text; n counts the
	// pieces so far (the chunk's token count as far as it is known).
	chunk(text string, n int) any
	// last is the final stream chunk: stop reason, counts, and the
	// amazon-bedrock-invocationMetrics every provider's last chunk carries.
	last(res genai.Result, metrics map[string]any) any
}

// bodyFor picks the body by the model id's provider prefix
// ("amazon.titan-text-…", "mistral.…", "meta.…"); ids without one (a
// provisioned model's reference) go by the provider recorded for the
// model. Anything else speaks the Meta Llama body.
func bodyFor(info genai.Info) provider {
	family := info.Provider
	if prefix, _, ok := strings.Cut(info.ID, "."); ok {
		switch prefix {
		case "amazon":
			family = "Amazon"
		case "mistral":
			family = "Mistral AI"
		case "meta":
			family = "Meta"
		}
	}
	switch family {
	case "Amazon":
		return titan{}
	case "Mistral AI":
		return mistral{}
	}
	return meta{}
}

// field is one member of a body's JSON schema. kind is the type's name
// as Bedrock's validator spells it: String, Number, Integer, JSONArray
// (of strings) or JSONObject (with fields).
type field struct {
	name     string
	kind     string
	required bool
	min, max float64 // Number and Integer; max < min: no upper bound
	fields   []field // JSONObject
}

// schemaCheck validates raw against fields at path ("#" for the body),
// collecting Bedrock's violation messages ("#: extraneous key [foo] is
// not permitted", "#/temperature: 1.5 is not in range [0, 1]").
func schemaCheck(path string, raw map[string]json.RawMessage, fields []field, viol *[]string) {
	known := map[string]bool{}
	for _, f := range fields {
		known[f.name] = true
	}
	for _, k := range sortedKeys(raw) {
		if !known[k] {
			*viol = append(*viol, path+": extraneous key ["+k+"] is not permitted")
		}
	}
	for _, f := range fields {
		v, ok := raw[f.name]
		if !ok || string(v) == "null" {
			if f.required {
				*viol = append(*viol, path+": required key ["+f.name+"] not found")
			}
			continue
		}
		at := path + "/" + f.name
		got := jsonType(v)
		want := f.kind
		if want == "Number" && (got == "Integer" || got == "BigDecimal") {
			got = "Number"
		}
		if got != want {
			*viol = append(*viol, at+": expected type: "+want+", found: "+got)
			continue
		}
		switch f.kind {
		case "Number", "Integer":
			var x float64
			_ = json.Unmarshal(v, &x)
			if x < f.min || (f.max >= f.min && x > f.max) {
				hi := "∞"
				if f.max >= f.min {
					hi = num(f.max)
				}
				*viol = append(*viol, fmt.Sprintf("%s: %s is not in range [%s, %s]", at, num(x), num(f.min), hi))
			}
		case "JSONArray":
			var items []json.RawMessage
			_ = json.Unmarshal(v, &items)
			for i, it := range items {
				if t := jsonType(it); t != "String" {
					*viol = append(*viol, fmt.Sprintf("%s/%d: expected type: String, found: %s", at, i, t))
				}
			}
		case "JSONObject":
			var inner map[string]json.RawMessage
			_ = json.Unmarshal(v, &inner)
			schemaCheck(at, inner, f.fields, viol)
		}
	}
}

// sortedKeys gives messages a fixed order between requests.
func sortedKeys(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }

// jsonType names a JSON value's type as the validator does.
func jsonType(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "Null"
	}
	switch v[0] {
	case '"':
		return "String"
	case '[':
		return "JSONArray"
	case '{':
		return "JSONObject"
	case 't', 'f':
		return "Boolean"
	case 'n':
		return "Null"
	}
	if bytes.ContainsAny(v, ".eE") {
		return "BigDecimal"
	}
	return "Integer"
}

// parseBody decodes body against fields into dst: Bedrock's wording for
// JSON that does not parse and for schema violations (one is quoted on
// its own; several are counted, then listed).
func parseBody(body []byte, fields []field, dst any) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return badf("Malformed input request, please reformat your input and try again.")
	}
	var viol []string
	schemaCheck("#", raw, fields, &viol)
	switch {
	case len(viol) == 1:
		return badf("Malformed input request: %s, please reformat your input and try again.", viol[0])
	case len(viol) > 1:
		return badf("Malformed input request: %d schema violations found, please reformat your input and try again. %s",
			len(viol), strings.Join(viol, ", "))
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return badf("Malformed input request: %s, please reformat your input and try again.", err.Error())
	}
	return nil
}

// maxTokensField is a body's token limit: [lo, the context length].
func maxTokensField(name string, lo, ctxLen int) field {
	f := field{name: name, kind: "Integer", min: float64(lo), max: float64(ctxLen)}
	if ctxLen <= 0 {
		f.max = -1
	}
	return f
}

// invocationMetrics is the amazon-bedrock-invocationMetrics object.
func invocationMetrics(res genai.Result) map[string]any {
	return map[string]any{"inputTokenCount": res.InputTokens, "outputTokenCount": res.OutputTokens,
		"invocationLatency": ms(res.Latency), "firstByteLatency": ms(res.Latency)}
}

// meta is the Meta Llama body (runtime.go: parseLlama, llamaReply).
type meta struct{}

func (meta) parse(body []byte, ctxLen int) (string, llama.Params, error) {
	return parseLlama(body, ctxLen)
}

func (meta) reply(res genai.Result) any {
	in, reason := res.InputTokens, res.FinishReason
	return llamaReply{Generation: res.Text, PromptTokenCount: &in, GenerationTokenCount: res.OutputTokens, StopReason: &reason}
}

func (meta) chunk(text string, n int) any {
	// prompt_token_count is null until the last chunk.
	return llamaReply{Generation: text, GenerationTokenCount: n}
}

func (meta) last(res genai.Result, metrics map[string]any) any {
	in, reason := res.InputTokens, res.FinishReason
	return llamaReply{PromptTokenCount: &in, GenerationTokenCount: res.OutputTokens, StopReason: &reason, Metrics: metrics}
}

// titan is the Amazon Titan Text body. Defaults are the AWS
// model-parameters-titan-text page's: temperature 0.7, topP 0.9,
// maxTokenCount 512.
type titan struct{}

type titanRequest struct {
	InputText            string `json:"inputText"`
	TextGenerationConfig *struct {
		Temperature   *float64 `json:"temperature"`
		TopP          *float64 `json:"topP"`
		MaxTokenCount *int     `json:"maxTokenCount"`
		StopSequences []string `json:"stopSequences"`
	} `json:"textGenerationConfig"`
}

type titanResult struct {
	TokenCount       int    `json:"tokenCount"`
	OutputText       string `json:"outputText"`
	CompletionReason string `json:"completionReason"`
}

type titanReply struct {
	InputTextTokenCount int           `json:"inputTextTokenCount"`
	Results             []titanResult `json:"results"`
}

type titanChunk struct {
	OutputText                string         `json:"outputText"`
	Index                     int            `json:"index"`
	TotalOutputTextTokenCount int            `json:"totalOutputTextTokenCount"`
	CompletionReason          *string        `json:"completionReason"`
	InputTextTokenCount       *int           `json:"inputTextTokenCount"`
	Metrics                   map[string]any `json:"amazon-bedrock-invocationMetrics,omitempty"`
}

func (titan) parse(body []byte, ctxLen int) (string, llama.Params, error) {
	p := llama.Params{Temperature: 0.7, TopP: 0.9, MaxTokens: 512}
	var b titanRequest
	err := parseBody(body, []field{
		{name: "inputText", kind: "String", required: true},
		{name: "textGenerationConfig", kind: "JSONObject", fields: []field{
			{name: "temperature", kind: "Number", min: 0, max: 1},
			{name: "topP", kind: "Number", min: 0, max: 1},
			maxTokensField("maxTokenCount", 0, ctxLen),
			{name: "stopSequences", kind: "JSONArray"},
		}},
	}, &b)
	if err != nil {
		return "", p, err
	}
	if c := b.TextGenerationConfig; c != nil {
		if c.Temperature != nil {
			p.Temperature = *c.Temperature
		}
		if c.TopP != nil {
			p.TopP = *c.TopP // 0 is the engine's "unset": all tokens
		}
		if c.MaxTokenCount != nil {
			if *c.MaxTokenCount == 0 {
				// Titan allows 0; the engine's 0 means "no limit".
				return "", p, badf("Malformed input request: #/textGenerationConfig/maxTokenCount: 0 is not in range [1, %s], please reformat your input and try again.", num(float64(ctxLen)))
			}
			p.MaxTokens = *c.MaxTokenCount
		}
		if err := stopSequences("#/textGenerationConfig/stopSequences", c.StopSequences, &p); err != nil {
			return "", p, err
		}
	}
	return b.InputText, p, nil
}

// titanReason maps a finish onto Titan's completionReason.
func titanReason(res genai.Result) string {
	switch {
	case res.FinishReason == llama.FinishLength:
		return "LENGTH"
	case res.StopSequence != "":
		return "STOP_CRITERIA_MET"
	}
	return "FINISH"
}

func (titan) reply(res genai.Result) any {
	return titanReply{InputTextTokenCount: res.InputTokens, Results: []titanResult{{
		TokenCount: res.OutputTokens, OutputText: res.Text, CompletionReason: titanReason(res)}}}
}

func (titan) chunk(text string, n int) any {
	// completionReason and inputTextTokenCount are null until the last chunk.
	return titanChunk{OutputText: text, TotalOutputTextTokenCount: n}
}

func (titan) last(res genai.Result, metrics map[string]any) any {
	in, reason := res.InputTokens, titanReason(res)
	return titanChunk{TotalOutputTextTokenCount: res.OutputTokens, CompletionReason: &reason, InputTextTokenCount: &in, Metrics: metrics}
}

// mistral is the Mistral text-completion body. Defaults follow the AWS
// model-parameters-mistral-text-completion page for Mistral 7B Instruct:
// temperature 0.5, top_p 0.9, top_k 50, max_tokens 512.
type mistral struct{}

type mistralRequest struct {
	Prompt      string   `json:"prompt"`
	MaxTokens   *int     `json:"max_tokens"`
	Stop        []string `json:"stop"`
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	TopK        *int     `json:"top_k"`
}

type mistralOutput struct {
	Text       string  `json:"text"`
	StopReason *string `json:"stop_reason"`
}

type mistralReply struct {
	Outputs []mistralOutput `json:"outputs"`
	Metrics map[string]any  `json:"amazon-bedrock-invocationMetrics,omitempty"`
}

func (mistral) parse(body []byte, ctxLen int) (string, llama.Params, error) {
	p := llama.Params{Temperature: 0.5, TopP: 0.9, TopK: 50, MaxTokens: 512}
	var b mistralRequest
	err := parseBody(body, []field{
		{name: "prompt", kind: "String", required: true},
		maxTokensField("max_tokens", 1, ctxLen),
		{name: "stop", kind: "JSONArray"},
		{name: "temperature", kind: "Number", min: 0, max: 1},
		{name: "top_p", kind: "Number", min: 0, max: 1},
		{name: "top_k", kind: "Integer", min: 1, max: 200},
	}, &b)
	if err != nil {
		return "", p, err
	}
	if b.MaxTokens != nil {
		p.MaxTokens = *b.MaxTokens
	}
	if b.Temperature != nil {
		p.Temperature = *b.Temperature
	}
	if b.TopP != nil {
		p.TopP = *b.TopP
	}
	if b.TopK != nil {
		p.TopK = *b.TopK
	}
	if err := stopSequences("#/stop", b.Stop, &p); err != nil {
		return "", p, err
	}
	// Mistral prompts begin with the BOS text ("<s>[INST] … [/INST]");
	// the engine adds BOS itself, so a literal one would be a second.
	return strings.TrimPrefix(b.Prompt, "<s>"), p, nil
}

func mistralReason(res genai.Result) string {
	if res.FinishReason == llama.FinishLength {
		return "length"
	}
	return "stop"
}

func (mistral) reply(res genai.Result) any {
	reason := mistralReason(res)
	return mistralReply{Outputs: []mistralOutput{{Text: res.Text, StopReason: &reason}}}
}

func (mistral) chunk(text string, _ int) any {
	return mistralReply{Outputs: []mistralOutput{{Text: text}}}
}

func (mistral) last(res genai.Result, metrics map[string]any) any {
	reason := mistralReason(res)
	return mistralReply{Outputs: []mistralOutput{{StopReason: &reason}}, Metrics: metrics}
}

// stopSequences sets p.Stop, refusing what the engine cannot take.
func stopSequences(path string, stops []string, p *llama.Params) error {
	for i, s := range stops {
		if s == "" {
			return badf("Malformed input request: %s/%d: expected minLength: 1, actual: 0, please reformat your input and try again.", path, i)
		}
	}
	p.Stop = stops
	if err := p.Validate(); err != nil {
		return badf("Malformed input request: %s: %s, please reformat your input and try again.", path, err.Error())
	}
	return nil
}
