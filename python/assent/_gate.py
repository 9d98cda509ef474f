"""What the DataFrame, Dask and PyTorch front ends of the gate share: loading a snapshot once
per process, the signal columns, and adding up reports."""

from __future__ import annotations

import os
import threading
from typing import Any, Mapping, Optional, Union

from . import InvalidArgument, Ledger, Snapshot

#: The manifest fields holding a publisher's opt-out (docs/formats/manifest.md), read for
#: purposes under ai_training: AIPREF Content-Usage, Content-Signal, TDMRep, C2PA/CAWG.
SIGNAL_FIELDS = ("content_usage", "content_signal", "tdm_reservation", "c2pa_training")

_cache: dict = {}
_cache_lock = threading.Lock()


def load(snapshot: Union[str, os.PathLike, Snapshot, Ledger]) -> Union[Snapshot, Ledger]:
    """A Snapshot or Ledger as given, or the snapshot file at a path, loaded once per process.

    The file's hash is checked when it is loaded; a file replaced or rewritten since (another
    inode, size or modification time) is loaded (and checked) again.
    """
    if isinstance(snapshot, (Snapshot, Ledger)):
        return snapshot
    if not isinstance(snapshot, (str, os.PathLike)):
        raise InvalidArgument(
            f"snapshot: give a path, an assent.Snapshot or an assent.Ledger, not {type(snapshot).__name__}")
    path = os.path.realpath(os.fspath(snapshot))
    try:
        st = os.stat(path)
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        key = None  # Snapshot() says why it cannot be read
    with _cache_lock:
        if key is not None and key in _cache:
            return _cache[key]
    snap = Snapshot(path)
    if key is not None:
        with _cache_lock:
            for old in [k for k in _cache if k[0] == path]:
                del _cache[old]
            _cache[key] = snap
    return snap


def signal_columns(columns, signals: Any) -> dict:
    """{manifest field: column name} for the opt-out signals.

    ``signals="default"``: the columns named like the fields, where present; a mapping
    {field: column} chooses others; None or False reads none.
    """
    if signals is None or signals is False:
        return {}
    if isinstance(signals, str) and signals == "default":
        return {f: f for f in SIGNAL_FIELDS if f in columns}
    if not isinstance(signals, Mapping):
        raise InvalidArgument("signals: give 'default', None, or a mapping {field: column} with "
                              f"fields among {', '.join(SIGNAL_FIELDS)}")
    out = {}
    for field, column in signals.items():
        if field not in SIGNAL_FIELDS:
            raise InvalidArgument(f"signals: unknown field '{field}' (one of {', '.join(SIGNAL_FIELDS)})")
        if column is None:
            continue
        if column not in columns:
            raise InvalidArgument(f"signals: no column '{column}' for {field}")
        out[field] = column
    return out


def add_reports(reports) -> dict:
    """The sum of several partitions' reports: counts add up, warnings are kept once each."""
    total: dict = {"items": 0, "kept": 0, "excluded": 0, "excluded_by_reason": {},
                   "by_category": {}, "malformed": 0, "duplicate_ids": 0}
    signals: dict = {}
    warnings: list = []
    for r in reports:
        for k in ("items", "kept", "excluded", "malformed", "duplicate_ids"):
            total[k] += r.get(k, 0)
        for reason, n in r.get("excluded_by_reason", {}).items():
            total["excluded_by_reason"][reason] = total["excluded_by_reason"].get(reason, 0) + n
        for signal, n in r.get("excluded_by_signal", {}).items():
            signals[signal] = signals.get(signal, 0) + n
        for cat, kx in r.get("by_category", {}).items():
            c = total["by_category"].setdefault(cat, {"kept": 0, "excluded": 0})
            c["kept"] += kx["kept"]
            c["excluded"] += kx["excluded"]
        for key in ("position", "terms"):
            if key in r:
                if key in total and total[key] != r[key]:
                    raise InvalidArgument(f"the partitions were decided at different {key}s: "
                                          f"{total[key]} and {r[key]}")
                total[key] = r[key]
        for w in r.get("warnings", []):
            if w not in warnings:
                warnings.append(w)
    if signals:
        total["excluded_by_signal"] = dict(sorted(signals.items()))
    total["excluded_by_reason"] = dict(sorted(total["excluded_by_reason"].items()))
    total["by_category"] = dict(sorted(total["by_category"].items()))
    if warnings:
        total["warnings"] = warnings
    total["partitions"] = len(reports)
    return total
