"""Train the example model: binary:logistic on sklearn's breast_cancer.csv.

Run from anywhere with Debian's python3-xgboost (1.7):
    /usr/bin/python3 examples/xgboost/train.py

Writes, next to this script:
  model/xgboost-model  the model in XGBoost's JSON format, under the file name
                       the SageMaker XGBoost container (and inferbox) looks for
  sample.csv           five held-out rows (two malignant, three benign), no label
  sample.expected      Booster.predict on sample.csv, one probability per line
"""
import os

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    data = load_breast_cancer()  # sklearn/datasets/data/breast_cancer.csv
    x, y = data.data.astype(np.float32), data.target
    rng = np.random.default_rng(2024)
    idx = rng.permutation(len(x))
    test, train = idx[:40], idx[40:]
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1,
              "seed": 2024, "nthread": 1, "eval_metric": "logloss"}
    booster = xgb.train(params, xgb.DMatrix(x[train], label=y[train]), num_boost_round=100)

    os.makedirs(os.path.join(HERE, "model"), exist_ok=True)
    # XGBoost picks the format from the extension: save as .json, then rename.
    tmp = os.path.join(HERE, "model", "xgboost-model.json")
    booster.save_model(tmp)
    os.replace(tmp, os.path.join(HERE, "model", "xgboost-model"))

    # Label 0 is malignant, 1 benign in this data set.
    sample = np.concatenate([test[y[test] == 0][:2], test[y[test] == 1][:3]])
    with open(os.path.join(HERE, "sample.csv"), "w") as f:
        for row in x[sample]:
            f.write(",".join(str(v) for v in row) + "\n")
    preds = booster.predict(xgb.DMatrix(x[sample]))
    with open(os.path.join(HERE, "sample.expected"), "w") as f:
        for p in preds:
            f.write(repr(float(p)) + "\n")
    print("labels:     ", list(y[sample]))
    print("predictions:", [float(p) for p in preds])


if __name__ == "__main__":
    main()
