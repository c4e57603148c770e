"""Quantiles of a Prometheus histogram between two /metrics scrapes.

    python3 histquantile.py BEFORE AFTER METRIC ENDPOINT [Q...]

BEFORE and AFTER are /metrics text dumps; METRIC is the histogram's name
(e.g. sagemaker_overhead_latency_microseconds); only series whose endpoint
label is ENDPOINT count. Prints the request count, the mean, and each
quantile (default 0.5 and 0.99) estimated by linear interpolation inside its
bucket, as Prometheus's histogram_quantile does, with the bucket's bounds:
the estimate is only as fine as the buckets.
"""
import re
import sys

LINE = re.compile(r'^(\w+)\{([^}]*)\}\s+(\S+)')


def parse(path, metric, endpoint):
    buckets, total, count = {}, 0.0, 0.0
    for line in open(path):
        m = LINE.match(line)
        if not m or not m.group(1).startswith(metric):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if labels.get("endpoint") != endpoint:
            continue
        v = float(m.group(3))
        if m.group(1) == metric + "_bucket":
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + v
        elif m.group(1) == metric + "_sum":
            total += v
        elif m.group(1) == metric + "_count":
            count += v
    return buckets, total, count


def quantile(q, bounds, cum):
    n = cum[-1]
    rank = q * n
    lo, prev = 0.0, 0.0
    for le, c in zip(bounds, cum):
        if c >= rank:
            if le == float("inf"):
                return lo, lo, le
            frac = (rank - prev) / (c - prev) if c > prev else 1.0
            return lo + (le - lo) * frac, lo, le
        lo, prev = le, c
    return lo, lo, float("inf")


def main():
    before, after, metric, endpoint = sys.argv[1:5]
    qs = [float(q) for q in sys.argv[5:]] or [0.5, 0.99]
    b0, s0, n0 = parse(before, metric, endpoint)
    b1, s1, n1 = parse(after, metric, endpoint)
    bounds = sorted(b1)
    cum = [b1[le] - b0.get(le, 0.0) for le in bounds]
    n = n1 - n0
    if n <= 0:
        sys.exit(f"no observations of {metric} for endpoint {endpoint}")
    print(f"{metric} endpoint={endpoint}: {int(n)} requests, mean {(s1 - s0) / n:.0f} us")
    for q in qs:
        v, lo, hi = quantile(q, bounds, cum)
        print(f"  p{q * 100:g}: {v:.0f} us (bucket {lo:g}..{hi:g} us)")


if __name__ == "__main__":
    main()
