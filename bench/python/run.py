"""The Python package side by side with the C++ core, in one run (issue "Python package"):

  decide_many: 1M rows (one subject each, drawn from 1M subjects; three categories) through
  `Snapshot.decide_many`, end to end from Python lists and from pandas Series, beside the
  same requests through the C++ `DecideBatch` (views built once, outside the timing).
  dask: `assent.dask.filter_jsonl` over 4 JSON Lines parts on a LocalCluster of 2 worker
  processes, beside `assent filter --threads 2` over the same items in one file.

Prints one JSON line per comparison. Usage: run.py BUILD_DIR WORK_DIR
"""

import json
import os
import subprocess
import sys
import time

build, work = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(build, "python"))
import assent  # noqa: E402

PURPOSE = "ai_training.first_party"


def best(f, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def decide_many():
    d = os.path.join(work, "subjects-1m")
    if not os.path.exists(os.path.join(d, "consent.snap")):
        subprocess.run([os.path.join(build, "assent_gate_bench"), "generate", d, "1000", "1000000"],
                       check=True, capture_output=True)
        subprocess.run([os.path.join(build, "assent"), "snapshot", "--data", os.path.join(d, "data"),
                        "--out", os.path.join(d, "consent.snap")], check=True, capture_output=True)
    snap = assent.Snapshot(os.path.join(d, "consent.snap"))
    import random
    import pandas as pd
    rng = random.Random(1)
    rows = 1_000_000
    cats = ["service_generated.telemetry", "service_generated.diagnostics", "service_generated.product_usage"]
    categories = [cats[i % 3] for i in range(rows)]
    subjects = [[f"u{rng.randrange(1_000_000)}"] for _ in range(rows)]
    cpp = snap._bench_decide_batch(PURPOSE, categories, subjects, 3) / 3
    py_list = best(lambda: snap.decide_many(PURPOSE, categories, subjects))
    series_c, series_s = pd.Series(categories), pd.Series(subjects)
    py_series = best(lambda: snap.decide_many(PURPOSE, series_c, series_s))
    mask, _ = snap.decide_many(PURPOSE, categories, subjects)
    print(json.dumps({"mode": "python-decide-many", "rows": rows, "events": snap.events,
                      "allowed": int(mask.sum()),
                      "cpp_decide_batch_rows_per_second": round(rows / cpp),
                      "decide_many_lists_rows_per_second": round(rows / py_list),
                      "decide_many_series_rows_per_second": round(rows / py_series),
                      "lists_vs_cpp": round(cpp / py_list, 2),
                      "series_vs_cpp": round(cpp / py_series, 2)}), flush=True)


def dask_jsonl():
    from distributed import Client, LocalCluster
    import assent.dask
    d = os.path.join(work, "gate-1m")
    manifest = os.path.join(d, "manifest.jsonl")
    if not os.path.exists(manifest):
        subprocess.run([os.path.join(build, "assent_gate_bench"), "generate", d, "1000000", "100000"],
                       check=True, capture_output=True)
        subprocess.run([os.path.join(build, "assent"), "snapshot", "--data", os.path.join(d, "data"),
                        "--out", os.path.join(d, "consent.snap")], check=True, capture_output=True)
    snap = os.path.join(d, "consent.snap")
    parts_dir, out_dir = os.path.join(d, "parts"), os.path.join(d, "kept")
    os.makedirs(parts_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    with open(manifest, "rb") as f:
        lines = f.readlines()
    parts = []
    for i in range(4):
        p = os.path.join(parts_dir, f"part-{i}.jsonl")
        with open(p, "wb") as f:
            f.writelines(lines[i * len(lines) // 4:(i + 1) * len(lines) // 4])
        parts.append(p)
    cli = best(lambda: subprocess.run(
        [os.path.join(build, "assent"), "filter", "--snapshot", snap, "--purpose", PURPOSE,
         "--in", manifest, "--out", os.path.join(d, "kept.jsonl"), "--threads", "2"],
        check=True, capture_output=True))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        assent.dask.filter_jsonl(parts[:2], snap, PURPOSE, out_dir)  # workers load the snapshot
        cluster_s = best(lambda: assent.dask.filter_jsonl(parts, snap, PURPOSE, out_dir))
        report = assent.dask.filter_jsonl(parts, snap, PURPOSE, out_dir)
    kept_cli = sum(1 for _ in open(os.path.join(d, "kept.jsonl"), "rb"))
    assert report["kept"] == kept_cli, (report["kept"], kept_cli)
    print(json.dumps({"mode": "python-dask-filter-jsonl", "items": len(lines), "parts": 4,
                      "cli_threads2_seconds": round(cli, 3), "dask_2_workers_seconds": round(cluster_s, 3),
                      "dask_vs_cli": round(cli / cluster_s, 2)}), flush=True)


if __name__ == "__main__":
    decide_many()
    dask_jsonl()
