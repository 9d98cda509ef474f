"""The training-data gate on a pandas DataFrame: ``assent filter``'s semantics, report and
opt-out signals, row for row.

Engine-agnostic by design: ``filter`` takes one DataFrame and returns the kept rows, so the
same call serves Dask ``map_partitions``, Spark ``mapInPandas`` and Ray ``map_batches``
(docs/python.md). Example::

    import assent.pandas
    kept, report = assent.pandas.filter(df, "consent.snap", "ai_training.first_party")
    report["excluded_by_reason"]     # {"no-consent": 120, "withdrawn": 3, ...}
"""

from __future__ import annotations

import json
from typing import Any, Optional, Tuple

import pandas as _pd

from . import InvalidArgument, _column, _time_text
from . import _gate


def _require(df, name: str, what: str, optional: bool, default: str, warnings: list) -> Optional[str]:
    if name is None:
        return None
    if name in df.columns:
        return name
    if optional and name == default:
        warnings.append(f"no column '{name}': every row is decided without {what}")
        return None
    import difflib
    like = difflib.get_close_matches(str(name), [str(c) for c in df.columns], n=1)
    hint = f" — did you mean '{like[0]}'?" if like else f" (columns: {', '.join(map(str, df.columns))})"
    raise InvalidArgument(f"no column '{name}' for the {what}{hint}")


def filter(df: _pd.DataFrame, snapshot: Any, purpose: str, *, id: str = "id",
           category: str = "category", subjects: Optional[str] = "subjects",
           account: Optional[str] = "account", signals: Any = "default", at: Any = None,
           skip_malformed: bool = False, threads: int = 1) -> Tuple[_pd.DataFrame, dict]:
    """Keeps the rows whose use for ``purpose`` is allowed; returns ``(kept_df, report)``.

    ``snapshot``: a path to a snapshot file (loaded once per process, hash-checked), an
    ``assent.Snapshot`` or an ``assent.Ledger``. ``id``, ``category``, ``subjects``,
    ``account``: the columns holding each (``subjects``: a list of user ids per row; None
    for no such column). ``signals``: "default" reads the columns content_usage,
    content_signal, tdm_reservation and c2pa_training where present, a mapping
    {field: column} others, None none. ``at``: decide as of a past time. A row
    ``assent filter`` would call malformed raises InvalidArgument naming the row, unless
    ``skip_malformed`` (then it is excluded and counted). The report is the CLI's, without
    the input and output hashes (a DataFrame has no bytes). Example::

        kept, report = assent.pandas.filter(df, "consent.snap", "ai_training.first_party",
                                            subjects="user_ids")
    """
    if not isinstance(df, _pd.DataFrame):
        raise InvalidArgument(f"df must be a pandas DataFrame, not {type(df).__name__}")
    snap = _gate.load(snapshot)
    warnings: list = []
    id_col = _require(df, id, "ids", False, "id", warnings)
    cat_col = _require(df, category, "categories", False, "category", warnings)
    sub_col = _require(df, subjects, "subjects", True, "subjects", warnings)
    acct_col = _require(df, account, "accounts", True, "account", warnings)
    sig = _gate.signal_columns(df.columns, signals)
    mask, report_json = snap._filter_rows(
        purpose, _column(df[id_col]), _column(df[cat_col]),
        None if sub_col is None else _column(df[sub_col]),
        None if acct_col is None else _column(df[acct_col]),
        {field: _column(df[col]) for field, col in sig.items()},
        _time_text(at), bool(skip_malformed), int(threads))
    report = json.loads(report_json)
    report.pop("input_sha256", None)
    report.pop("output_sha256", None)
    if warnings:
        report["warnings"] = warnings + report.get("warnings", [])
    return df[mask], report
