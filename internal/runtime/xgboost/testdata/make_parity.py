"""Train small XGBoost models and write reference predictions for the Go parity test.

Run with Debian's python3-xgboost (1.7): /usr/bin/python3 make_parity.py OUTDIR

For each case it writes, in OUTDIR:
  NAME.json  the model, booster.save_model("NAME.json")
  NAME.csv   held-out rows, no label, an empty field for a missing value
  NAME.pred  Booster.predict on the same rows (float32 values, one row per line)
and cases.txt lists "NAME OBJECTIVE" per line.
"""
import os
import sys

import numpy as np
import xgboost as xgb
from sklearn import datasets


def split(x, y, rng, missing_train=0.05, missing_test=0.2):
    x = x.astype(np.float32)
    idx = rng.permutation(len(x))
    n_test = max(20, len(x) // 5)
    test, train = idx[:n_test], idx[n_test:]
    xtr, xte = x[train].copy(), x[test].copy()
    # Missing values in training make both default directions appear.
    xtr[rng.random(xtr.shape) < missing_train] = np.nan
    xte[rng.random(xte.shape) < missing_test] = np.nan
    return xtr, y[train], xte


def write_rows(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(",".join("" if np.isnan(v) else str(np.float32(v)) for v in row))
            f.write("\n")


def write_preds(path, preds):
    with open(path, "w") as f:
        for p in preds:
            p = np.atleast_1d(np.asarray(p, dtype=np.float32))
            f.write(",".join(repr(float(v)) for v in p))
            f.write("\n")


def main(out):
    rng = np.random.default_rng(7)
    cancer = datasets.load_breast_cancer()
    iris = datasets.load_iris()
    wine = datasets.load_wine()
    diabetes = datasets.load_diabetes()
    yd = diabetes.target.astype(np.float32)

    binary = split(cancer.data, cancer.target, rng)
    reg = split(diabetes.data, yd, rng)
    iris_s = split(iris.data, iris.target, rng)
    wine_s = split(wine.data, wine.target, rng)

    cases = [
        # name, data, params, rounds
        ("binary_logistic", binary, {"objective": "binary:logistic"}, 30),
        ("binary_logistic_base", binary, {"objective": "binary:logistic", "base_score": 0.3}, 20),
        ("binary_logitraw", binary, {"objective": "binary:logitraw", "base_score": 0.2}, 20),
        ("binary_hinge", binary, {"objective": "binary:hinge"}, 10),
        ("reg_logistic", binary, {"objective": "reg:logistic", "base_score": 0.7}, 20),
        ("reg_squarederror", reg, {"objective": "reg:squarederror"}, 30),
        ("reg_squarederror_base", reg, {"objective": "reg:squarederror", "base_score": 150}, 20),
        ("reg_linear", reg, {"objective": "reg:linear"}, 20),
        ("reg_pseudohubererror", reg, {"objective": "reg:pseudohubererror", "base_score": 140}, 20),
        ("reg_absoluteerror", reg, {"objective": "reg:absoluteerror"}, 20),
        ("reg_squaredlogerror", reg, {"objective": "reg:squaredlogerror"}, 20),
        ("count_poisson", reg, {"objective": "count:poisson", "base_score": 100}, 20),
        ("reg_gamma", reg, {"objective": "reg:gamma"}, 20),
        ("reg_tweedie", reg, {"objective": "reg:tweedie"}, 20),
        ("multi_softprob", wine_s, {"objective": "multi:softprob", "num_class": 3}, 15),
        ("multi_softprob_iris", iris_s, {"objective": "multi:softprob", "num_class": 3, "base_score": 0.2}, 10),
        ("multi_softmax", wine_s, {"objective": "multi:softmax", "num_class": 3}, 15),
        ("dart_logistic", binary, {"objective": "binary:logistic", "booster": "dart",
                                   "rate_drop": 0.3, "skip_drop": 0.0, "normalize_type": "forest"}, 15),
        ("parallel_trees", reg, {"objective": "reg:squarederror", "num_parallel_tree": 3,
                                 "subsample": 0.8, "colsample_bynode": 0.8}, 5),
    ]
    with open(os.path.join(out, "cases.txt"), "w") as manifest:
        for name, (xtr, ytr, xte), params, rounds in cases:
            p = {"max_depth": 4, "eta": 0.3, "seed": 1, "nthread": 1}
            p.update(params)
            booster = xgb.train(p, xgb.DMatrix(xtr, label=ytr), rounds)
            booster.save_model(os.path.join(out, name + ".json"))
            preds = booster.predict(xgb.DMatrix(xte))
            write_rows(os.path.join(out, name + ".csv"), xte)
            write_preds(os.path.join(out, name + ".pred"), preds)
            manifest.write("%s %s\n" % (name, p["objective"]))


if __name__ == "__main__":
    main(sys.argv[1])
