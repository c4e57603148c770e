"""The baseline: score the same CSV files with python3-xgboost directly.

    score_python.py INPUT_DIR OUTPUT_DIR NTHREAD

Reads each file with pandas.read_csv (float32; numpy.loadtxt without
pandas), predicts with Booster.predict(nthread=NTHREAD) and writes one
prediction per line, as a transform job does. Prints rows/s end to end.
"""
import glob
import os
import sys
import time

import numpy
import xgboost

try:
    import pandas
except ImportError:
    pandas = None

inp, out, nthread = sys.argv[1], sys.argv[2], int(sys.argv[3])
repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
os.makedirs(out, exist_ok=True)
t0 = time.perf_counter()
booster = xgboost.Booster(model_file=os.path.join(repo, "examples/xgboost/model/xgboost-model"))
booster.set_param({"nthread": nthread})
rows = 0
for path in sorted(glob.glob(os.path.join(inp, "*.csv"))):
    if pandas is not None:
        x = pandas.read_csv(path, header=None, dtype=numpy.float32).to_numpy()
    else:
        x = numpy.loadtxt(path, delimiter=",", dtype=numpy.float32, ndmin=2)
    p = booster.predict(xgboost.DMatrix(x, nthread=nthread))
    with open(os.path.join(out, os.path.basename(path) + ".out"), "w") as f:
        f.write("\n".join("%.8g" % v for v in p) + "\n")
    rows += len(p)
dt = time.perf_counter() - t0
print("python reader: %s" % ("pandas " + pandas.__version__ if pandas else "numpy.loadtxt"))
print("python rows: %d seconds: %.2f rows/s: %.0f" % (rows, dt, rows / dt))
