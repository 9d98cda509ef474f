"""Assent for Python: consent decisions and the training-data gate, inside your pipeline.

Every decision is made by Assent's C++ engine (the code behind ``assent check``, ``assent
filter`` and the server), from a snapshot file (``assent snapshot --out FILE``) or a
read-only view of a ledger. Example::

    import assent
    snap = assent.Snapshot("consent.snap")
    d = snap.decide("content.chat", "ai_training.first_party", subjects=["u1"])
    if d: ...                                   # d.allow, d.reason, d.rule, d.clauses

The gate over DataFrames, Dask and PyTorch lives in ``assent.pandas``, ``assent.dask`` and
``assent.torch`` (imported on first use). Errors are ``assent.Error`` subclasses named by
what to do: ``InvalidArgument`` (also a ValueError), ``NotFound``, ``FailedPrecondition``,
``DataLoss`` (a snapshot whose content does not match its hash), ...
"""

from __future__ import annotations

import datetime as _dt
import importlib as _importlib
import json as _json
import os as _os
from typing import Any, Iterable, Optional, Sequence

from . import _core
from ._core import (AlreadyExists, DataLoss, Error, FailedPrecondition, Gone, Internal,
                    InvalidArgument, NotFound, PermissionDenied, Unavailable)

__all__ = [
    "Snapshot", "Ledger", "Decision", "Error", "InvalidArgument", "NotFound", "AlreadyExists",
    "FailedPrecondition", "PermissionDenied", "Unavailable", "DataLoss", "Internal", "Gone",
    "REASONS",
]

#: Every reason a decision can give (DESIGN.md), then the gate's own.
REASONS = ("necessary", "consented", "not-objected", "prohibited", "unlisted", "no-consent",
           "withdrawn", "stale", "expired", "objected", "no-subject", "erased")


def _time_text(at: Any) -> Optional[str]:
    """None, an RFC 3339 string, or a timezone-aware datetime, as RFC 3339 text."""
    if at is None or isinstance(at, str):
        return at
    if isinstance(at, _dt.datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidArgument(
                "at: a naive datetime has no time zone; give one, e.g. "
                "datetime(2026, 1, 1, tzinfo=timezone.utc)")
        return at.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if hasattr(at, "to_pydatetime"):  # a pandas Timestamp
        return _time_text(at.to_pydatetime())
    raise InvalidArgument(f"at: give a datetime or an RFC 3339 string, not {type(at).__name__}")


def _column(values: Any) -> Any:
    """A pandas Series or Index as a NumPy object array (read without copies in C++)."""
    if values is None or isinstance(values, str):
        return values
    to_numpy = getattr(values, "to_numpy", None)
    if to_numpy is not None:
        return to_numpy(dtype=object)
    dtype = getattr(values, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "O") != "O":
        return values.astype(object)
    return values


def _id(value: Any, what: str) -> str:
    """An id: a str, or an int read as its decimal text (never None or a float as text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu":  # a NumPy integer
        return str(int(value))
    raise InvalidArgument(f"{what}: an id must be a str (or an int), not {type(value).__name__}")


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a str, not {type(value).__name__}")
    return value


class Decision:
    """One decision, with the fields of DESIGN.md's decision JSON as attributes.

    ``bool(decision)`` is ``decision.allow``. Example::

        d = snap.decide("content.chat", "ai_training.first_party", subjects=["u1"])
        print(d.allow, d.reason, d.rule, d.clauses, d.terms, d.position)
    """

    __slots__ = ("allow", "reason", "basis", "rule", "clauses", "terms", "at", "position",
                 "parties", "_dict")

    def __init__(self, fields: dict):
        self._dict = fields
        self.allow: bool = fields["decision"] == "allow"
        self.reason: str = fields["reason"]
        self.basis: Optional[str] = fields.get("basis")
        self.rule: Optional[str] = fields.get("rule")
        self.clauses: list = list(fields.get("clauses", []))
        self.terms: Optional[str] = fields.get("terms")
        self.at: str = fields.get("at")
        self.position: int = fields.get("position", 0)
        self.parties: list = [dict(p) for p in fields.get("parties", [])]

    def __bool__(self) -> bool:
        return self.allow

    def to_dict(self) -> dict:
        """The decision JSON of DESIGN.md, as a dict (what ``assent check --json`` prints)."""
        return _json.loads(_json.dumps(self._dict))

    def __repr__(self) -> str:
        return (f"Decision(allow={self.allow}, reason={self.reason!r}, rule={self.rule!r}, "
                f"position={self.position})")


class _Decisions:
    """The decision API shared by Snapshot and Ledger."""

    def decide(self, category: str, purpose: str, subjects: Iterable[str] = (),
               account: Optional[str] = None, at: Any = None) -> Decision:
        """Decides one question, as ``assent check`` does.

        ``subjects``: the people the data is about; ``account``: the customer organisation;
        ``at``: a past time (datetime with a time zone, or RFC 3339), default now.
        Raises InvalidArgument for an unknown category or purpose (with a did-you-mean) and
        FailedPrecondition when no terms are in effect at ``at``. Example::

            snap.decide("content.chat", "ai_training.first_party", subjects=["u1"]).allow
        """
        if isinstance(subjects, (str, int)):
            subjects = [subjects]
        if subjects is None:
            subjects = ()
        return Decision(_json.loads(self._decide(_name(category, "category"), _name(purpose, "purpose"),
                                                 [_id(s, "subjects") for s in subjects],
                                                 None if account is None else _id(account, "account"),
                                                 _time_text(at))))

    def decide_many(self, purpose: str, categories: Any, subjects: Any, accounts: Any = None,
                    at: Any = None, *, errors: str = "raise"):
        """Decides a column of questions at once; returns ``(mask, reasons)``.

        ``categories``: one str for every row, or a sequence (list, NumPy array, pandas
        Series); ``subjects``: per row a list of ids (or one id, or None); ``accounts``:
        per row an id or None. ``mask`` is a NumPy bool array, ``reasons`` an object array of
        reason names. Runs through the engine's batch path with the GIL released, a chunk of
        rows at a time. ``errors="deny"`` answers a row that cannot be decided (an unknown
        category) with False and "unknown-category" instead of raising. Example::

            mask, reasons = snap.decide_many("ai_training.first_party", df["category"],
                                             df["subjects"])
            df = df[mask]
        """
        return self._decide_many(purpose, _column(categories), _column(subjects),
                                 _column(accounts), _time_text(at), errors)


    def categories(self, at: Any = None) -> list:
        """The category names of the terms in effect at ``at`` (default now), parents first.

        Example: ``snap.categories()`` -> ``["content", "content.audio", ...]``."""
        return super().categories(_time_text(at))

    def purposes(self, at: Any = None) -> list:
        """The purpose names of the terms in effect at ``at`` (default now), parents first.

        Example: ``"ai_training.first_party" in snap.purposes()``."""
        return super().purposes(_time_text(at))


class Snapshot(_Decisions, _core._Snapshot):
    """A snapshot file (``assent snapshot --out FILE``), loaded and checked against its hash.

    Raises NotFound when unreadable and DataLoss when a byte changed. Example::

        snap = assent.Snapshot("consent.snap")
        snap.position, snap.sha256, snap.terms
    """

    def __init__(self, path: Any):
        if not isinstance(path, (str, _os.PathLike)):
            raise InvalidArgument(f"path: give a file path, not {type(path).__name__}")
        super().__init__(_os.fspath(path))

    def __reduce__(self):  # pickled as its path: each process loads (and checks) it itself
        return (Snapshot, (self.path,))

    def __repr__(self) -> str:
        return f"Snapshot({self.path!r}, position={self.position}, sha256={self.sha256[:12]}...)"


class Ledger(_Decisions, _core._Ledger):
    """A read-only view of a ledger at its head (``refresh()`` reads it again).

    Example::

        ledger = assent.Ledger.open("./assent-data")
        ledger.decide("content.chat", "ai_training.first_party", subjects=["u1"])
    """

    @classmethod
    def open(cls, data_dir: str = "./assent-data", database: Optional[str] = None) -> "Ledger":
        """Opens the ledger in ``data_dir`` (or a PostgreSQL ``database`` URL) for reading."""
        if not isinstance(data_dir, (str, _os.PathLike)):
            raise InvalidArgument(f"data_dir: give a directory path, not {type(data_dir).__name__}")
        return cls(_os.fspath(data_dir), database or "")

    def __repr__(self) -> str:
        return f"Ledger({self.data_dir!r}, position={self.position})"


_SUBMODULES = ("pandas", "dask", "torch")


def __getattr__(name: str):
    if name in _SUBMODULES:  # heavy dependencies: imported on first use
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'assent' has no attribute '{name}'")
