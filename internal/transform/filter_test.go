package transform

import "testing"

func TestFilters(t *testing.T) {
	cases := []struct {
		path, in string
		f        format
		want     string
	}{
		{"$", `a,b,c`, formatCSV, `a,b,c`},
		{"$[1:]", `id,1,2`, formatCSV, `1,2`},
		{"$[0,2]", `a,b,c`, formatCSV, `a,c`},
		{"$[-1]", `a,b,c`, formatCSV, `c`},
		{"$[:2]", `a,b,c`, formatCSV, `a,b`},
		{"$.features", `{"id":1,"features":[1,2.50]}`, formatJSON, `[1,2.50]`},
		{"$.a.b[1]", `{"a":{"b":[1,2]}}`, formatJSON, `2`},
		{"$['id','SageMakerOutput']", `{"x":0,"SageMakerOutput":0.5,"id":7}`, formatJSON, `{"id":7,"SageMakerOutput":0.5}`},
		{"$[*]", `[1,2]`, formatJSON, `[1,2]`},
	}
	for _, c := range cases {
		p, err := parsePath(c.path)
		if err != nil {
			t.Fatalf("parse %s: %v", c.path, err)
		}
		got, err := filterRecord(p, []byte(c.in), c.f)
		if err != nil || string(got) != c.want {
			t.Errorf("%s on %s = %s, %v; want %s", c.path, c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"$..a", "$[?(@.a)]", "a.b", "$[1:2:3]", "$[x]", "$["} {
		if _, err := parsePath(bad); err == nil {
			t.Errorf("parsePath(%q) accepted", bad)
		}
	}
	p, _ := parsePath("$[5]")
	if _, err := filterRecord(p, []byte("a,b"), formatCSV); err == nil {
		t.Error("index out of range accepted")
	}
}

func TestJoin(t *testing.T) {
	cases := []struct {
		in, out string
		f       format
		want    string
	}{
		{"1,2", "0.5\n", formatCSV, "1,2,0.5"},
		{`{"id":1}`, `0.5`, formatJSON, `{"id":1,"SageMakerOutput":0.5}`},
		{`{}`, `{"p":1}`, formatJSON, `{"SageMakerOutput":{"p":1}}`},
		{`[1,2]`, `label`, formatJSON, `{"SageMakerInput":[1,2],"SageMakerOutput":"label"}`},
	}
	for _, c := range cases {
		got, err := joinRecord([]byte(c.in), []byte(c.out), c.f)
		if err != nil || string(got) != c.want {
			t.Errorf("join(%s, %s) = %s, %v; want %s", c.in, c.out, got, err, c.want)
		}
	}
}
