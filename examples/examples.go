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
