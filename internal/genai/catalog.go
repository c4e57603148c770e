package genai

import (
	"strings"

	"github.com/inferbox/inferbox/internal/gguf"
)

// ModelSpec registers one foundation model (from --foundation-model
// ID=PATH or the foundation_models configuration list).
type ModelSpec struct {
	ID   string
	Path string // a .gguf file
	// Provider is the providerName shown in the catalog; empty derives it
	// from the id's prefix ("meta.…" → Meta) or the file's architecture.
	Provider string
	// ChatFormat is template, llama2, chatml or raw; empty picks the file's
	// template, else the family's built-in fallback.
	ChatFormat string
}

// Info describes a registered foundation model.
type Info struct {
	ID             string
	Name           string // general.name from the file, else the id
	Provider       string
	Architecture   string
	ContextLength  int
	ChatFormat     string // the format in use (see newChatFormat)
	HasTemplate    bool   // the file carries tokenizer.chat_template
	InferenceTypes []string
	Modalities     []string // input and output: TEXT
}

// fileMeta is what the catalog reads from a model file's header.
type fileMeta struct {
	name, arch, template, bos, eos string
	context                        int
}

func readMeta(reg *gguf.Registry, path string) (fileMeta, error) {
	f, err := reg.Open(path)
	if err != nil {
		return fileMeta{}, err
	}
	defer f.Close()
	kv := map[string]any{}
	for _, p := range f.KVs {
		kv[p.Key] = p.Value
	}
	str := func(k string) string { s, _ := kv[k].(string); return s }
	m := fileMeta{name: str("general.name"), arch: str("general.architecture"), template: str("tokenizer.chat_template")}
	m.context = intOf(kv[m.arch+".context_length"])
	if toks, ok := kv["tokenizer.ggml.tokens"].(gguf.Array); ok {
		if names, ok := toks.Values.([]string); ok {
			pick := func(key string) string {
				v, ok := kv[key]
				if !ok {
					return ""
				}
				if id := intOf(v); id >= 0 && id < len(names) {
					return names[id]
				}
				return ""
			}
			m.bos, m.eos = pick("tokenizer.ggml.bos_token_id"), pick("tokenizer.ggml.eos_token_id")
		}
	}
	return m, nil
}

func intOf(v any) int {
	switch x := v.(type) {
	case uint32:
		return int(x)
	case int32:
		return int(x)
	case uint64:
		return int(x)
	case int64:
		return int(x)
	case uint16:
		return int(x)
	case int16:
		return int(x)
	case uint8:
		return int(x)
	case int8:
		return int(x)
	}
	return -1
}

// providerOf derives a provider name: the id's prefix as Bedrock spells
// it, else Meta for llama-family files.
func providerOf(id, arch string) string {
	if prefix, _, ok := strings.Cut(id, "."); ok {
		switch prefix {
		case "meta":
			return "Meta"
		case "mistral":
			return "Mistral AI"
		case "amazon":
			return "Amazon"
		}
	}
	if arch == "llama" {
		return "Meta"
	}
	return "inferbox"
}
