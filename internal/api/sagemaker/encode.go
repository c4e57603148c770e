package sagemaker

import (
	"encoding/json"
	"strconv"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
