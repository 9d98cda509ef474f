"""The training-data gate on a Dask cluster (``distributed``): every worker loads the snapshot
file once (hash-checked, cached per process) and filters its partitions in parallel.

Example::

    from distributed import Client, LocalCluster
    import dask.dataframe as dd, assent.dask
    client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
    kept, report = assent.dask.filter(dd.read_parquet("corpus/"), "consent.snap",
                                      "ai_training.first_party")
    kept.to_parquet("kept/")

``filter`` keeps the kept rows on the workers (persisted) and returns the report already
added up; ``filter_jsonl`` streams JSON Lines files (plain, .gz or .zst) through the C++ gate
without pandas, one output file per input.
"""

from __future__ import annotations

import operator
import os
from typing import Any, Iterable, Optional, Sequence, Tuple

from . import InvalidArgument, Ledger, Snapshot, _time_text
from . import _gate


def _snapshot_path(snapshot: Any) -> str:
    if isinstance(snapshot, Ledger):
        raise InvalidArgument("a Dask cluster needs a snapshot file its workers can read "
                              "(assent snapshot --out FILE), not a Ledger")
    if isinstance(snapshot, Snapshot):
        return snapshot.path
    if not isinstance(snapshot, (str, os.PathLike)):
        raise InvalidArgument(f"snapshot_path: give a path, not {type(snapshot).__name__}")
    path = os.path.abspath(os.fspath(snapshot))
    _gate.load(path)  # refused here, once, before any worker starts: missing or changed bytes
    return path


def _partition(df, path: str, purpose: str, options: dict):
    from . import pandas as _pandas
    return _pandas.filter(df, path, purpose, **options)


def filter(ddf, snapshot_path: Any, purpose: str, *, id: str = "id", category: str = "category",
           subjects: Optional[str] = "subjects", account: Optional[str] = "account",
           signals: Any = "default", at: Any = None, skip_malformed: bool = False):
    """Filters a Dask DataFrame; returns ``(kept_ddf, report)``.

    The same arguments and semantics as ``assent.pandas.filter``, per partition; ``kept_ddf``
    holds exactly the rows ``assent filter`` keeps, in the same order (persisted on the
    workers), and ``report`` is the sum of the partitions' reports (``duplicate_ids`` counts
    repeats within a partition). Give ``at`` to pin the clock for every worker. Example::

        kept, report = assent.dask.filter(ddf, "consent.snap", "ai_training.first_party")
    """
    import dask
    import dask.dataframe as dd
    from dask import delayed

    if not isinstance(ddf, dd.DataFrame):
        raise InvalidArgument(f"ddf must be a dask DataFrame, not {type(ddf).__name__}")
    path = _snapshot_path(snapshot_path)
    options = dict(id=id, category=category, subjects=subjects, account=account,
                   signals=signals, at=_time_text(at), skip_malformed=skip_malformed)
    parts = [delayed(_partition, pure=True)(p, path, purpose, options) for p in ddf.to_delayed()]
    parts = dask.persist(*parts)
    reports = dask.compute(*[delayed(operator.getitem)(p, 1) for p in parts])
    kept = dd.from_delayed([delayed(operator.getitem)(p, 0) for p in parts], meta=ddf._meta,
                           divisions=ddf.divisions, verify_meta=False)
    return kept, _gate.add_reports(reports)


def _file(path: str, source: str, out: str, purpose: str, at: Optional[str],
          skip_malformed: bool, threads: int, fields: dict) -> dict:
    import json
    snap = _gate.load(path)
    report = json.loads(snap._filter_file(purpose, source, out, "", at, skip_malformed, threads,
                                          fields))
    report["file"] = source
    report["out"] = out
    return report


def filter_jsonl(paths: Sequence[str], snapshot_path: Any, purpose: str, out_dir: str, *,
                 fields: Optional[dict] = None, at: Any = None, skip_malformed: bool = False,
                 threads: int = 1) -> dict:
    """Filters JSON Lines manifests (plain, .gz or .zst), one task per file, each written to
    ``out_dir`` under its own name (compressed as the name says); returns the summed report
    with each file's under ``"files"``.

    ``fields``: other names for the manifest fields, e.g. ``{"subjects": "user_ids"}``.
    Each output is written whole or not at all (a temporary file renamed on success).
    Example::

        report = assent.dask.filter_jsonl(sorted(glob.glob("corpus/*.jsonl.gz")),
                                          "consent.snap", "ai_training.first_party", "kept/")
    """
    import dask
    from dask import delayed

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    if not paths:
        raise InvalidArgument("paths: give at least one JSON Lines file")
    names = [os.path.basename(p) for p in paths]
    seen = set()
    for n in names:
        if n in seen:
            raise InvalidArgument(f"two inputs are named '{n}': their outputs in out_dir would "
                                  "collide (rename one, or filter them in two calls)")
        seen.add(n)
    out_dir = os.path.abspath(os.fspath(out_dir))
    if not os.path.isdir(out_dir):
        raise InvalidArgument(f"out_dir '{out_dir}' is not a directory (create it first)")
    for p in paths:
        if os.path.dirname(p) == out_dir:
            raise InvalidArgument(f"'{p}' is in out_dir: its output would replace it")
    path = _snapshot_path(snapshot_path)
    tasks = [delayed(_file, pure=False)(path, p, os.path.join(out_dir, n), purpose,
                                        _time_text(at), bool(skip_malformed), int(threads),
                                        dict(fields or {}))
             for p, n in zip(paths, names)]
    reports = list(dask.compute(*tasks))
    total = _gate.add_reports(reports)
    total["files"] = [{"file": r["file"], "out": r["out"], "items": r["items"],
                       "kept": r["kept"], "input_sha256": r["input_sha256"],
                       "output_sha256": r["output_sha256"]} for r in reports]
    return total
