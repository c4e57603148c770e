#!/usr/bin/python3
"""Trains the example model and writes it as plain JSON (no pickle).

The data is the Wisconsin breast cancer data set that ships with
scikit-learn (sklearn/datasets/data/breast_cancer.csv, read through
load_breast_cancer). The model is a standardising step followed by a
logistic regression; serve.py recomputes it with the standard library:

    score = 1 / (1 + exp(-(intercept + sum(coef[i] * (x[i] - mean[i]) / scale[i]))))

score is the probability of classes[1] ("benign").

Run with Debian's python (apt-get install python3-sklearn):

    /usr/bin/python3 train.py            # writes model/model.json and sample.csv
"""
import json
import os

import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

here = os.path.dirname(os.path.abspath(__file__))

data = load_breast_cancer()
x_train, x_test, y_train, y_test = train_test_split(
    data.data, data.target, test_size=0.25, random_state=0, stratify=data.target)

scaler = StandardScaler().fit(x_train)
clf = LogisticRegression(max_iter=5000, random_state=0).fit(scaler.transform(x_train), y_train)
accuracy = clf.score(scaler.transform(x_test), y_test)

model = {
    "format": "inferbox-example-logistic-regression/1",
    "description": "Breast cancer diagnosis from 30 cell-nucleus features (sklearn breast_cancer.csv)",
    "features": list(data.feature_names),
    "classes": [str(c) for c in data.target_names],
    "mean": [float(v) for v in scaler.mean_],
    "scale": [float(v) for v in scaler.scale_],
    "coef": [float(v) for v in clf.coef_[0]],
    "intercept": float(clf.intercept_[0]),
    "test_accuracy": round(float(accuracy), 4),
    "trained_with": "scikit-learn " + sklearn.__version__,
}
os.makedirs(os.path.join(here, "model"), exist_ok=True)
with open(os.path.join(here, "model", "model.json"), "w") as f:
    json.dump(model, f, indent=1)
    f.write("\n")

# A few held-out rows (features only, no label) to try the server with, and
# sklearn's own answers for them, so tests can compare.
with open(os.path.join(here, "sample.csv"), "w") as f:
    for row in x_test[:5]:
        f.write(",".join(repr(float(v)) for v in row) + "\n")
expected = clf.predict_proba(scaler.transform(x_test[:5]))[:, 1]
with open(os.path.join(here, "sample-expected.json"), "w") as f:
    json.dump({"labels": [str(data.target_names[int(p >= 0.5)]) for p in expected],
               "scores": [float(p) for p in expected]}, f, indent=1)
    f.write("\n")

print("test accuracy %.4f on %d held-out rows" % (accuracy, len(y_test)))
