"""Writes a CSV dataset for the batch transform benchmark.

    make_data.py DIR MB FILES

DIR/input/part-NN.csv: FILES files of about MB/FILES megabytes in all, 30
features per row (the example XGBoost model's), no header. 5,000 distinct
rows (the example's sample rows, every feature scaled per row) repeat to
reach the size: the scoring work per row is the same as for unique rows.
"""
import os
import sys

import numpy

out, mb, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
base = numpy.array([[float(v) for v in l.split(",")]
                    for l in open(os.path.join(repo, "examples/xgboost/sample.csv")).read().split()])
rng = numpy.random.default_rng(7)
rows = base[numpy.arange(5000) % len(base)] * rng.uniform(0.8, 1.2, size=(5000, base.shape[1]))
block = "".join(",".join("%.6g" % v for v in r) + "\n" for r in rows).encode()
os.makedirs(os.path.join(out, "input"), exist_ok=True)
per_file = mb * 1000000 // files
total_rows = 0
for i in range(files):
    with open(os.path.join(out, "input", "part-%02d.csv" % i), "wb") as f:
        written = 0
        while written + len(block) <= per_file:
            f.write(block)
            written += len(block)
            total_rows += len(rows)
print("rows: %d" % total_rows)
