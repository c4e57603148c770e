"""Make the gateway benchmark's trivial model: XGBoost binary:logistic with
one tree of depth 1 on one feature, so scoring a request costs next to nothing
and the benchmark measures the gateway, not the model.

Run with Debian's python3-xgboost from the repository root:

    /usr/bin/python3 bench/gateway/make_model.py bench/gateway/model

Writes OUTDIR/xgboost-model (XGBoost JSON, the SageMaker container's file name).
"""
import os
import sys

import numpy as np
import xgboost as xgb


def main(out):
    x = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1], dtype=np.float32)
    params = {"objective": "binary:logistic", "max_depth": 1, "eta": 1.0, "seed": 1,
              "nthread": 1, "tree_method": "exact", "min_child_weight": 0}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), 1)
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "xgboost-model.json")
    booster.save_model(tmp)  # XGBoost picks JSON from the extension
    os.replace(tmp, os.path.join(out, "xgboost-model"))
    print("predictions for 0.5, 2.5:", booster.predict(xgb.DMatrix(np.array([[0.5], [2.5]], dtype=np.float32))))


if __name__ == "__main__":
    main(sys.argv[1])
