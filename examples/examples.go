// Package examples bundles the example models into the binary, so
// `inferbox serve --examples` deploys them on a fresh machine with nothing
// else present. The scripts that made them sit beside them.
package examples

import "embed"

// XGBoost is the breast-cancer classifier trained by xgboost/train.py
// (binary:logistic, 30 features); its model file is xgboost/model/xgboost-model.
//
//go:embed xgboost/model/xgboost-model xgboost/sample.csv
var XGBoost embed.FS

// LLM is the demo language model trained by llm/train.py: a 0.9M-parameter
// llama-architecture GGUF file, llm/model/kjv-tiny.gguf, that continues
// text in the style of the King James Version of Genesis and Exodus.
//
//go:embed llm/model/kjv-tiny.gguf
var LLM embed.FS
