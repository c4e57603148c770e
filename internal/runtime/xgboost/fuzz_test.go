package xgboost

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/runtime"
)

// readAll drains a rowReader; every error but io.EOF must be a 400
// ModelError, naming the row for line formats.
func readAll(t *testing.T, r rowReader, nf int) []float32 {
	var buf []float32
	for {
		var err error
		buf, err = r.read(buf, 3)
		if len(buf)%nf != 0 {
			t.Fatalf("%d values is not whole rows of %d", len(buf), nf)
		}
		if err == io.EOF {
			return buf
		}
		if err != nil {
			var me *runtime.ModelError
			if !errors.As(err, &me) || me.StatusCode != 400 {
				t.Fatalf("error %v: want a 400 ModelError", err)
			}
			if _, isJSON := r.(*jsonReader); !isJSON && !strings.HasPrefix(me.Message, "row ") {
				t.Fatalf("error %q does not name the row", me.Message)
			}
			return nil
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{"1,2,3\n", "1,,3\r\n4,5,6", ",,\n", "1e40,-1e-50,NaN\n", "a,b,c\n", "1,2\n", "1,2,3,4\n",
		"\n\n1,2,3\n", " 1 , 2 ,3 \n", "0x1p-2,inf,-Inf\n", "1,2,3" + strings.Repeat(",", 70000)} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		nf := int(n%8) + 1
		rows := readAll(t, newCSVReader(bytes.NewReader(data), nf, -1), nf)
		if len(rows)/nf > bytes.Count(data, []byte{'\n'})+1 {
			t.Fatalf("%d rows from %d lines", len(rows)/nf, bytes.Count(data, []byte{'\n'})+1)
		}
		readAll(t, newLibSVMReader(bytes.NewReader(data), nf, -1), nf)
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"instances":[[1,2,3]]}`, `{"instances":[{"features":[1,null,3]}]}`, `[[1,2,3],[4,5,6]]`,
		`[1,2,3]`, `{"features":[1,2,3]}`, `[]`, `{"instances":[]}`, `[[1,2]]`, `{"instances":[[1,2,3]],"x":1}`, `[[1,2,3]]]`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		readAll(t, newJSONReader(bytes.NewReader(data), 3), 3)
		readAll(t, newJSONLinesReader(bytes.NewReader(data), 3, -1), 3)
	})
}

// FuzzLoadModel: any document either fails to load or loads a model that
// predicts without panicking or looping.
func FuzzLoadModel(f *testing.F) {
	f.Add([]byte(tinyModel))
	f.Add([]byte(strings.Replace(tinyModel, `"binary:logistic"`, `"multi:softprob"`, 1)))
	f.Add([]byte(strings.NewReplacer(`"num_class":"0"`, `"num_class":"3"`, `"binary:logistic"`, `"multi:softmax"`,
		`"tree_info":[0,0]`, `"tree_info":[1,2]`).Replace(tinyModel)))
	f.Add([]byte(`{"learner":{"gradient_booster":{"name":"dart","gbtree":{"name":"gbtree","model":{"tree_info":[],"trees":[]}},"weight_drop":[]},` +
		`"learner_model_param":{"num_feature":"1"},"objective":{"name":"reg:squarederror"}},"version":[1,7,4]}`))
	f.Add([]byte("binf"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseModel(data)
		if err != nil {
			return
		}
		m.threads = 1
		nan := float32(math.NaN())
		rows := [][]float32{make([]float32, m.nFeature), make([]float32, m.nFeature), make([]float32, m.nFeature)}
		for i := range rows[1] {
			rows[1][i] = nan
			rows[2][i] = float32(i) - 1
		}
		out := make([]float32, len(rows)*m.NumOutputs())
		m.Predict(rows, out)
	})
}
