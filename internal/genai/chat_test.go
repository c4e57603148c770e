package genai

import (
	"github.com/inferbox/inferbox/internal/testmodel"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
)

// llama2Template is Meta's Llama 2 chat template as published in
// meta-llama/Llama-2-7b-chat-hf's tokenizer_config.json.
const llama2Template = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`

// chatMLTemplate is the ChatML layout with a generation prompt.
const chatMLTemplate = `{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`

var conversation = []Message{
	{Role: "system", Content: "Be brief."},
	{Role: "user", Content: "Hi"},
	{Role: "assistant", Content: "Hello."},
	{Role: "user", Content: "Tell a story"},
}

// The file's template, rendered by the Jinja engine, and the built-in
// fallback for the same family agree (the fallback leaves the first BOS
// to the tokenizer).
func TestChatTemplateMatchesFallback(t *testing.T) {
	for _, tc := range []struct {
		name, tmpl, fallback, prefix string
	}{
		{"llama2", llama2Template, FormatLlama2, "<s>"},
		{"chatml", chatMLTemplate, FormatChatML, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf, err := newChatFormat("", tc.tmpl, "llama", "<s>", "</s>")
			if err != nil {
				t.Fatal(err)
			}
			if tf.name != FormatTemplate {
				t.Fatalf("format %s; want the file's template", tf.name)
			}
			got, err := tf.render(conversation)
			if err != nil {
				t.Fatal(err)
			}
			ff, err := newChatFormat(tc.fallback, "", "llama", "<s>", "</s>")
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ff.render(conversation)
			if got != tc.prefix+want {
				t.Errorf("template:\n%q\nfallback:\n%q", got, tc.prefix+want)
			}
		})
	}
	want := "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Tell a story [/INST]"
	f, _ := newChatFormat("", llama2Template, "llama", "<s>", "</s>")
	if got, _ := f.render(conversation); got != want {
		t.Errorf("llama2 template rendered %q; want %q", got, want)
	}
}

func TestChatTemplateErrors(t *testing.T) {
	f, err := newChatFormat("", llama2Template, "llama", "<s>", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.render([]Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}})
	if err == nil || !strings.Contains(err.Error(), "alternate") {
		t.Errorf("non-alternating roles: %v", err)
	}
	if _, err := newChatFormat("", "{% if %}", "llama", "", ""); err == nil {
		t.Error("a broken template compiled")
	}
	if _, err := newChatFormat("template", "", "llama", "", ""); err == nil {
		t.Error("format template without a template in the file was accepted")
	}
	if _, err := newChatFormat("alpaca", "", "llama", "", ""); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestChatFormatChoice(t *testing.T) {
	for _, tc := range []struct{ configured, tmpl, arch, want string }{
		{"", "", "llama", FormatLlama2},
		{"", "", "gpt2", FormatChatML},
		{"", chatMLTemplate, "llama", FormatTemplate},
		{"raw", chatMLTemplate, "llama", FormatRaw},
	} {
		f, err := newChatFormat(tc.configured, tc.tmpl, tc.arch, "", "")
		if err != nil || f.name != tc.want {
			t.Errorf("%+v: %v %v", tc, f, err)
		}
	}
	f, _ := newChatFormat(FormatRaw, "", "llama", "", "")
	if got, _ := f.render([]Message{{Role: "system", Content: "S"}, {Role: "user", Content: "Once upon a time"}}); got != "S\nOnce upon a time" {
		t.Errorf("raw: %q", got)
	}
}

func TestReadMeta(t *testing.T) {
	path := testmodel.Stories260K(t)
	m, err := readMeta(gguf.NewRegistry(), path)
	if err != nil {
		t.Fatalf("test model: %v", err)
	}
	if m.arch != "llama" || m.context != 2048 || m.template != "" || m.bos != "<s>" || m.eos != "</s>" {
		t.Errorf("meta %+v", m)
	}
	if p := providerOf("meta.stories260k", m.arch); p != "Meta" {
		t.Errorf("provider %s", p)
	}
	if p := providerOf("tiny", "gpt2"); p != "inferbox" {
		t.Errorf("provider %s", p)
	}
}
