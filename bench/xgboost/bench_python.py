"""Time python3-xgboost's Booster.predict with one thread on the benchmark rows.

Usage: /usr/bin/python3 bench_python.py OUTDIR   (after make_model.py OUTDIR)
Prints "python rows/s: N" (best of several runs) on stdout.
"""
import os
import sys
import time

import numpy as np
import xgboost as xgb


def main(out):
    booster = xgb.Booster(model_file=os.path.join(out, "model.json"))
    booster.set_param({"nthread": 1})
    x = np.genfromtxt(os.path.join(out, "rows.csv"), delimiter=",", dtype=np.float32)
    booster.predict(xgb.DMatrix(x, nthread=1))  # warm up
    best = float("inf")
    for _ in range(7):
        # A fresh DMatrix each time: the Booster caches predictions per DMatrix.
        dm = xgb.DMatrix(x, nthread=1)
        t0 = time.perf_counter()
        booster.predict(dm)
        best = min(best, time.perf_counter() - t0)
    print("python rows/s: %.0f" % (len(x) / best))
    # With DMatrix construction from the numpy array included, for reference.
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        booster.predict(xgb.DMatrix(x, nthread=1))
        best = min(best, time.perf_counter() - t0)
    print("python rows/s incl. DMatrix: %.0f" % (len(x) / best))


if __name__ == "__main__":
    main(sys.argv[1])
