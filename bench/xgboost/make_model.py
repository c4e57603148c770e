"""Make the benchmark model and rows: a 200-tree, depth-6 binary:logistic model
on 30 features, and 10,000 rows to score.

Run with Debian's python3-xgboost: /usr/bin/python3 make_model.py OUTDIR
Writes OUTDIR/model.json and OUTDIR/rows.csv (no label; about 1% of the values
are missing, written as empty fields).
"""
import os
import sys

import numpy as np
import xgboost as xgb


def main(out):
    rng = np.random.default_rng(42)
    n_train, n_rows, n_feat = 20000, 10000, 30
    x = rng.normal(size=(n_train + n_rows, n_feat)).astype(np.float32)
    # A non-linear target with interactions so that trees grow to full depth.
    logit = (x[:, 0] * x[:, 1] + np.sin(3 * x[:, 2]) + x[:, 3] ** 2 - 1
             + 0.5 * x[:, 4:10].sum(axis=1) - np.abs(x[:, 10]) + 0.3 * x[:, 11] * x[:, 12])
    y = (logit + rng.normal(scale=0.5, size=len(logit)) > 0).astype(np.float32)
    x[rng.random(x.shape) < 0.01] = np.nan
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "seed": 1,
              "nthread": 2, "tree_method": "hist"}
    booster = xgb.train(params, xgb.DMatrix(x[:n_train], label=y[:n_train]), 200)
    booster.save_model(os.path.join(out, "model.json"))
    with open(os.path.join(out, "rows.csv"), "w") as f:
        for row in x[n_train:]:
            f.write(",".join("" if np.isnan(v) else str(v) for v in row))
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
