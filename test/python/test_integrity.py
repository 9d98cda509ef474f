"""A snapshot whose bytes changed is refused by every entry point; a ledger being written
while it is read gives a consistent view; memory stays bounded over 10M rows and 1,000
calls."""

import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from conftest import ASSENT, publish_examples, run

PURPOSE = "ai_training.first_party"


@pytest.fixture()
def damaged(corpus, tmp_path):
    """A copy of the corpus snapshot with one byte of its body changed (same size)."""
    data = bytearray(corpus["snapshot"].read_bytes())
    data[len(data) // 2] ^= 0x01
    path = tmp_path / "damaged.snap"
    path.write_bytes(bytes(data))
    return path


def test_a_changed_byte_is_refused_everywhere(assent_module, corpus, damaged, tmp_path):
    assent = assent_module
    import assent.dask
    import assent.pandas
    import assent.torch
    import dask.dataframe as dd
    df = pd.read_json(corpus["manifest"], lines=True, dtype=False, nrows=1000)
    entry_points = {
        "Snapshot": lambda: assent.Snapshot(str(damaged)),
        "pandas.filter": lambda: assent.pandas.filter(df, str(damaged), PURPOSE),
        "dask.filter": lambda: assent.dask.filter(dd.from_pandas(df, npartitions=2), str(damaged), PURPOSE),
        "dask.filter_jsonl": lambda: assent.dask.filter_jsonl([str(corpus["manifest"])], str(damaged),
                                                               PURPOSE, str(tmp_path)),
        "torch.ConsentFilter": lambda: list(assent.torch.ConsentFilter(df.to_dict("records"), str(damaged), PURPOSE)),
    }
    for name, call in entry_points.items():
        with pytest.raises(assent.DataLoss, match="damaged.snap") as e:
            call()
        assert e.value.code == "data_loss", name


def test_a_cached_snapshot_rewritten_in_place_is_checked_again(assent_module, corpus, tmp_path):
    import assent.pandas
    path = tmp_path / "consent.snap"
    path.write_bytes(corpus["snapshot"].read_bytes())
    df = pd.read_json(corpus["manifest"], lines=True, dtype=False, nrows=1000)
    kept, _ = assent.pandas.filter(df, str(path), PURPOSE)  # loaded and cached
    assert len(kept) > 0
    time.sleep(0.01)
    with open(path, "r+b") as f:  # same size, same inode: only the modification time tells
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(assent_module.DataLoss):
        assent.pandas.filter(df, str(path), PURPOSE)


def test_a_ledger_being_written_reads_consistently(assent_module, tmp_path):
    """While `assent consent withdraw` objects for w0, w1, ... one after another, every view
    opened shows exactly the first n objections, n its event count."""
    assent = assent_module
    data = tmp_path / "data"
    publish_examples(data)
    people = [f"w{i}" for i in range(30)]
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         "for p in sys.argv[3:]:\n"
         "    subprocess.run([sys.argv[1], 'consent', 'withdraw', '--data', sys.argv[2], '--subject', p,"
         " '--category', 'service_generated', '--purpose', 'ai_training'], check=True, capture_output=True)\n",
         str(ASSENT), str(data), *people])
    views = 0
    try:
        while True:
            done = writer.poll() is not None
            view = assent.Ledger.open(str(data))
            n = view.events
            mask, reasons = view.decide_many(PURPOSE, "service_generated.telemetry", people)
            assert list(mask) == [False] * n + [True] * (len(people) - n), (n, list(reasons))
            assert set(reasons[:n]) <= {"objected"} and set(reasons[n:]) <= {"not-objected"}
            views += 1
            if done:
                break
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert view.events == len(people) and views > 2
    # refresh() reads what was appended since a view was opened.
    first = assent.Ledger.open(str(data))
    run("consent", "grant", "--data", data, "--subject", "w0", "--category", "service_generated",
        "--purpose", "ai_training")
    assert first.decide("service_generated.telemetry", PURPOSE, ["w0"]).reason == "objected"
    first.refresh()
    assert first.decide("service_generated.telemetry", PURPOSE, ["w0"]).allow


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_decide_many_over_ten_million_rows_in_bounded_memory(assent_module, corpus):
    snap = assent_module.Snapshot(str(corpus["snapshot"]))
    ids = np.array([f"u{i}" for i in range(20000)], dtype=object)
    subjects = ids[np.arange(10_000_000) % 20000]  # 10M rows, one subject each (80 MB of pointers)
    before_peak = max(peak_mib(), rss_mib())
    mask, reasons = snap.decide_many(PURPOSE, "service_generated.telemetry", subjects)
    outputs = (mask.nbytes + reasons.nbytes) / 2**20  # 10 MB + 80 MB, the answer itself
    grew = peak_mib() - before_peak
    assert mask.shape == (10_000_000,) and mask.any() and not mask.all()
    # Chunked: beside its answer, the call holds one chunk's requests (a few MB), never 10M.
    assert grew < outputs + 64, (grew, outputs)


def test_nothing_leaks_across_a_thousand_calls(assent_module, corpus):
    import assent.pandas
    snap = assent_module.Snapshot(str(corpus["snapshot"]))
    subjects = [[f"u{i % 500}"] for i in range(10_000)]
    df = pd.read_json(corpus["manifest"], lines=True, dtype=False, nrows=2000)
    def calls(n):
        for _ in range(n):
            snap.decide_many(PURPOSE, "service_generated.telemetry", subjects)
            snap.decide("service_generated.telemetry", PURPOSE, ["u1"])
            assent.pandas.filter(df, snap, PURPOSE)
    calls(100)  # warm: allocator pools, caches
    settled = rss_mib()
    calls(1000)
    assert rss_mib() - settled < 8, (settled, rss_mib())
