package transform

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The JSONPath subset SageMaker documents for InputFilter and OutputFilter
// (Developer Guide, batch-transform-data-processing): $, .name, ['a','b'],
// [n] and [n,m,...] (negative indexes count from the end), [start:end]
// (either bound may be left out) and *. CSV rows are JSON arrays of their
// columns, so only index paths apply to them. Anything else (recursive
// descent "..", filter expressions "?()", script expressions) is refused
// when the job is created.

type stepKind int

const (
	stepKeys  stepKind = iota // .name or ['a','b']
	stepIndex                 // [n] or [n,m]
	stepSlice                 // [start:end]
	stepAll                   // * or [*]
)

type step struct {
	kind       stepKind
	keys       []string
	indexes    []int
	start, end *int
}

// jsonPath is a parsed filter.
type jsonPath struct {
	src   string
	steps []step
}

// parsePath parses a filter; "" and "$" select the whole record.
func parsePath(s string) (*jsonPath, error) {
	p := &jsonPath{src: s}
	if s == "" || s == "$" {
		return p, nil
	}
	if !strings.HasPrefix(s, "$") {
		return nil, fmt.Errorf("JSONPath %q must start with $", s)
	}
	rest := s[1:]
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, ".."):
			return nil, fmt.Errorf("JSONPath %q: recursive descent (..) is not supported", s)
		case strings.HasPrefix(rest, ".*"):
			p.steps = append(p.steps, step{kind: stepAll})
			rest = rest[2:]
		case rest[0] == '.':
			i := 1
			for i < len(rest) && rest[i] != '.' && rest[i] != '[' {
				i++
			}
			name := rest[1:i]
			if name == "" {
				return nil, fmt.Errorf("JSONPath %q: empty name after a dot", s)
			}
			p.steps = append(p.steps, step{kind: stepKeys, keys: []string{name}})
			rest = rest[i:]
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("JSONPath %q: unclosed [", s)
			}
			st, err := parseBracket(strings.TrimSpace(rest[1:end]))
			if err != nil {
				return nil, fmt.Errorf("JSONPath %q: %v", s, err)
			}
			p.steps = append(p.steps, st)
			rest = rest[end+1:]
		default:
			return nil, fmt.Errorf("JSONPath %q: unexpected %q", s, rest)
		}
	}
	return p, nil
}

func parseBracket(in string) (step, error) {
	switch {
	case in == "*":
		return step{kind: stepAll}, nil
	case strings.HasPrefix(in, "?") || strings.HasPrefix(in, "("):
		return step{}, fmt.Errorf("filter and script expressions (%s) are not supported", in)
	case strings.HasPrefix(in, "'") || strings.HasPrefix(in, "\""):
		var keys []string
		for _, part := range strings.Split(in, ",") {
			part = strings.TrimSpace(part)
			if len(part) < 2 || (part[0] != '\'' && part[0] != '"') || part[len(part)-1] != part[0] {
				return step{}, fmt.Errorf("bad key %s", part)
			}
			keys = append(keys, part[1:len(part)-1])
		}
		return step{kind: stepKeys, keys: keys}, nil
	case strings.Contains(in, ":"):
		a, b, _ := strings.Cut(in, ":")
		if strings.Contains(b, ":") {
			return step{}, fmt.Errorf("slice steps ([a:b:c]) are not supported")
		}
		st := step{kind: stepSlice}
		for _, x := range []struct {
			s   string
			dst **int
		}{{a, &st.start}, {b, &st.end}} {
			if x.s = strings.TrimSpace(x.s); x.s == "" {
				continue
			}
			n, err := strconv.Atoi(x.s)
			if err != nil {
				return step{}, fmt.Errorf("bad slice bound %q", x.s)
			}
			*x.dst = &n
		}
		return st, nil
	}
	st := step{kind: stepIndex}
	for _, part := range strings.Split(in, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return step{}, fmt.Errorf("bad index %q", part)
		}
		st.indexes = append(st.indexes, n)
	}
	return st, nil
}

// whole says whether the path selects the whole record.
func (p *jsonPath) whole() bool { return p == nil || len(p.steps) == 0 }

// indexOnly says whether every step applies to arrays (the CSV subset).
func (p *jsonPath) indexOnly() bool {
	for _, s := range p.steps {
		if s.kind == stepKeys {
			return false
		}
	}
	return true
}

// apply selects from v (decoded JSON: map[string]any, []any, scalars).
// Several keys select an object of those members, several indexes or a
// slice an array; a single key or index selects the member itself.
func (p *jsonPath) apply(v any) (any, error) {
	for _, s := range p.steps {
		switch s.kind {
		case stepKeys:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("filter %s: %s is not an object", p.src, kindOf(v))
			}
			if len(s.keys) == 1 {
				x, ok := m[s.keys[0]]
				if !ok {
					return nil, fmt.Errorf("filter %s: no member %q", p.src, s.keys[0])
				}
				v = x
				continue
			}
			out := orderedObject{}
			for _, k := range s.keys {
				if x, ok := m[k]; ok {
					out = append(out, member{k, x})
				}
			}
			v = out
		case stepIndex:
			a, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("filter %s: %s is not an array", p.src, kindOf(v))
			}
			var out []any
			for _, i := range s.indexes {
				if i < 0 {
					i += len(a)
				}
				if i < 0 || i >= len(a) {
					return nil, fmt.Errorf("filter %s: index %d out of range (%d elements)", p.src, i, len(a))
				}
				out = append(out, a[i])
			}
			if len(s.indexes) == 1 {
				v = out[0]
			} else {
				v = out
			}
		case stepSlice:
			a, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("filter %s: %s is not an array", p.src, kindOf(v))
			}
			lo, hi := 0, len(a)
			if s.start != nil {
				lo = clampIndex(*s.start, len(a))
			}
			if s.end != nil {
				hi = clampIndex(*s.end, len(a))
			}
			if hi < lo {
				hi = lo
			}
			v = append([]any(nil), a[lo:hi]...)
		case stepAll:
			switch x := v.(type) {
			case []any:
			case map[string]any:
				out := make([]any, 0, len(x))
				for _, e := range x {
					out = append(out, e)
				}
				v = out
			default:
				return nil, fmt.Errorf("filter %s: * needs an array or object, got %s", p.src, kindOf(v))
			}
		}
	}
	return v, nil
}

func clampIndex(i, n int) int {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any, orderedObject:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case nil:
		return "null"
	}
	return "a scalar"
}

// member and orderedObject keep the key order a ['a','b'] filter asked for.
type member struct {
	k string
	v any
}
type orderedObject []member

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalJSON(m.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Record formats for filters and joins.
type format int

const (
	formatCSV format = iota
	formatJSON
)

// formatOf maps a content type to a record format; ok is false for types
// data processing does not support.
func formatOf(contentType string) (format, bool) {
	ct, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
	switch strings.TrimSpace(ct) {
	case "text/csv":
		return formatCSV, true
	case "application/json", "application/jsonlines", "application/x-jsonlines", "application/jsonl":
		return formatJSON, true
	}
	return 0, false
}

// decodeRecord reads one record: CSV as an array of its column strings,
// JSON as a value with numbers kept exactly as written.
func decodeRecord(data []byte, f format) (any, error) {
	if f == formatCSV {
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		r.LazyQuotes = true
		cols, err := r.Read()
		if err != nil {
			return nil, fmt.Errorf("CSV: %v", err)
		}
		out := make([]any, len(cols))
		for i, c := range cols {
			out[i] = c
		}
		return out, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("JSON: %v", err)
	}
	return v, nil
}

// encodeRecord writes a value back in format f: for CSV an array becomes
// a row of columns and a scalar one column.
func encodeRecord(v any, f format) ([]byte, error) {
	if f == formatCSV {
		var cols []string
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				cols = append(cols, csvCell(e))
			}
		default:
			cols = []string{csvCell(x)}
		}
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		if err := w.Write(cols); err != nil {
			return nil, err
		}
		w.Flush()
		return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
	}
	return marshalJSON(v)
}

func csvCell(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	b, _ := marshalJSON(v)
	return string(b)
}

func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// filterRecord applies p to one record of format f.
func filterRecord(p *jsonPath, data []byte, f format) ([]byte, error) {
	if p.whole() {
		return data, nil
	}
	v, err := decodeRecord(data, f)
	if err != nil {
		return nil, err
	}
	if v, err = p.apply(v); err != nil {
		return nil, err
	}
	return encodeRecord(v, f)
}

// joinRecord joins an input record with its output (JoinSource Input): a
// CSV row gets the output's columns appended; a JSON object gets a
// SageMakerOutput member; any other JSON input becomes
// {"SageMakerInput": input, "SageMakerOutput": output}. The output is
// embedded as JSON when it parses as JSON, else as a string.
func joinRecord(input, output []byte, in format) ([]byte, error) {
	output = bytes.TrimRight(output, "\r\n")
	if in == formatCSV {
		j := make([]byte, 0, len(input)+1+len(output))
		j = append(append(append(j, input...), ','), output...)
		return j, nil
	}
	iv, err := decodeRecord(input, formatJSON)
	if err != nil {
		return nil, err
	}
	var ov any
	if v, err := decodeRecord(output, formatJSON); err == nil {
		ov = v
	} else {
		ov = string(output)
	}
	if m, ok := iv.(map[string]any); ok {
		// Keep the input's member order: re-encode the object by hand.
		obj := bytes.TrimSpace(input)
		o, err := marshalJSON(ov)
		if err != nil {
			return nil, err
		}
		sep := ","
		if len(m) == 0 {
			sep = ""
		}
		out := make([]byte, 0, len(obj)+len(o)+24)
		out = append(out, obj[:len(obj)-1]...)
		out = append(out, sep+`"SageMakerOutput":`...)
		out = append(out, o...)
		return append(out, '}'), nil
	}
	return marshalJSON(orderedObject{{"SageMakerInput", iv}, {"SageMakerOutput", ov}})
}
