package genai

import (
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Chat formats: how messages become a prompt.
const (
	// FormatTemplate renders the model file's tokenizer.chat_template.
	FormatTemplate = "template"
	// FormatLlama2 is Llama 2's "<s>[INST] <<SYS>>…<</SYS>> … [/INST]" layout.
	FormatLlama2 = "llama2"
	// FormatChatML is "<|im_start|>role\n…<|im_end|>" (llama.cpp's default).
	FormatChatML = "chatml"
	// FormatRaw joins the system text and message texts with newlines, for
	// base (non-chat) models: the conversation is a plain text prompt.
	FormatRaw = "raw"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // user, assistant or system
	Content string
}

// chatFormat turns a conversation into a prompt.
type chatFormat struct {
	name string
	tmpl *jinja.Template // FormatTemplate only
	bos  string          // the BOS and EOS token texts, for templates
	eos  string
}

// newChatFormat picks the format: the configured one if given, else the
// file's template if it has one, else the family's built-in fallback
// (Llama 2 for llama-architecture files, ChatML otherwise).
func newChatFormat(configured, fileTemplate, arch, bos, eos string) (*chatFormat, error) {
	name := configured
	if name == "" {
		switch {
		case fileTemplate != "":
			name = FormatTemplate
		case arch == "llama":
			name = FormatLlama2
		default:
			name = FormatChatML
		}
	}
	f := &chatFormat{name: name, bos: bos, eos: eos}
	switch name {
	case FormatLlama2, FormatChatML, FormatRaw:
	case FormatTemplate:
		if fileTemplate == "" {
			return nil, fmt.Errorf("chat format %q: the model file has no tokenizer.chat_template", name)
		}
		t, err := jinja.Compile(fileTemplate)
		if err != nil {
			return nil, fmt.Errorf("chat template: %w", err)
		}
		f.tmpl = t
	default:
		return nil, fmt.Errorf("chat format %q: want template, llama2, chatml or raw", name)
	}
	return f, nil
}

// render builds the prompt for msgs (system messages included), ending
// where the assistant's reply begins.
func (f *chatFormat) render(msgs []Message) (string, error) {
	switch f.name {
	case FormatTemplate:
		list := make([]any, len(msgs))
		for i, m := range msgs {
			list[i] = map[string]any{"role": m.Role, "content": m.Content}
		}
		out, err := f.tmpl.Render(map[string]any{
			"messages":              list,
			"add_generation_prompt": true,
			"bos_token":             f.bos,
			"eos_token":             f.eos,
		})
		if err != nil {
			return "", fmt.Errorf("chat template: %w", err)
		}
		return out, nil
	case FormatChatML:
		var b strings.Builder
		for _, m := range msgs {
			fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
		}
		b.WriteString("<|im_start|>assistant\n")
		return b.String(), nil
	case FormatRaw:
		parts := make([]string, 0, len(msgs))
		for _, m := range msgs {
			if m.Content != "" {
				parts = append(parts, m.Content)
			}
		}
		return strings.Join(parts, "\n"), nil
	default:
		return renderLlama2(msgs), nil
	}
}

// renderLlama2 is Meta's Llama 2 chat layout: the system prompt is folded
// into the first user turn; each exchange is "[INST] user [/INST] reply".
// BOS is added by the tokenizer for the first turn.
func renderLlama2(msgs []Message) string {
	var b strings.Builder
	var system []string
	first := true
	for _, m := range msgs {
		switch m.Role {
		case "system":
			system = append(system, m.Content)
		case "user":
			if !first {
				b.WriteString("<s>")
			}
			b.WriteString("[INST] ")
			if len(system) > 0 {
				b.WriteString("<<SYS>>\n" + strings.Join(system, "\n") + "\n<</SYS>>\n\n")
				system = nil
			}
			b.WriteString(strings.TrimSpace(m.Content) + " [/INST]")
			first = false
		case "assistant":
			b.WriteString(" " + strings.TrimSpace(m.Content) + " </s>")
		}
	}
	return b.String()
}
