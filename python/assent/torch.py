"""The training-data gate in a PyTorch input pipeline: ``ConsentFilter`` wraps a dataset of
dict items and yields only those whose use for the purpose is allowed (with the same
semantics and opt-out signals as ``assent filter``), in ``DataLoader`` worker processes too.

Example::

    from torch.utils.data import DataLoader
    from assent.torch import ConsentFilter
    loader = DataLoader(ConsentFilter(corpus, "consent.snap", "ai_training.first_party"),
                        batch_size=None, num_workers=4)
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Iterator, Mapping, Optional

import torch.utils.data as _data

from . import InvalidArgument, _time_text
from . import _gate
from .dask import _snapshot_path

_FIELDS = ("id", "category", "subjects", "account")


class ConsentFilter(_data.IterableDataset):
    """Yields the items of ``dataset`` whose use for ``purpose`` is allowed.

    ``dataset``: a PyTorch ``IterableDataset`` or ``Dataset``, or any iterable of dict items.
    ``snapshot``: a snapshot file (or ``assent.Snapshot``); each worker process loads it
    itself, hash-checked. ``fields``: the item keys holding the id, category, subjects and
    account, e.g. ``{"subjects": "user_ids"}`` (``"id": None`` numbers the items instead).
    ``signals``: as in ``assent.pandas.filter``, keys of the items. Items are decided
    ``batch_size`` at a time, in the order they come.

    With ``DataLoader(num_workers=N)``, worker k takes items k, k+N, k+2N, ... of the dataset
    (``split_by_worker=True``, the default, as WebDataset does), so every item is decided
    and yielded once. Give ``split_by_worker=False`` for an ``IterableDataset`` that already
    splits itself by ``torch.utils.data.get_worker_info()``. Example::

        loader = DataLoader(ConsentFilter(corpus, "consent.snap", "ai_training.first_party",
                                          fields={"subjects": "speaker_ids"}),
                            batch_size=None, num_workers=2)
    """

    def __init__(self, dataset: Any, snapshot: Any, purpose: str,
                 fields: Optional[Mapping[str, Optional[str]]] = None, *,
                 signals: Any = "default", at: Any = None, batch_size: int = 256,
                 split_by_worker: bool = True, skip_malformed: bool = False):
        super().__init__()
        if not hasattr(dataset, "__iter__") and not hasattr(dataset, "__getitem__"):
            raise InvalidArgument(f"dataset must be iterable, not {type(dataset).__name__}")
        self.dataset = dataset
        self.snapshot_path = _snapshot_path(snapshot)
        self.purpose = purpose
        self.fields = {f: f for f in _FIELDS}
        for k, v in (fields or {}).items():
            if k not in _FIELDS:
                raise InvalidArgument(f"fields: unknown field '{k}' (one of {', '.join(_FIELDS)})")
            self.fields[k] = v
        if isinstance(signals, str) and signals == "default":
            self.signals = {f: f for f in _gate.SIGNAL_FIELDS}
        else:
            self.signals = _gate.signal_columns(_AnyKey(), signals)
        self.at = _time_text(at)
        if int(batch_size) < 1:
            raise InvalidArgument("batch_size must be at least 1")
        self.batch_size = int(batch_size)
        self.split_by_worker = bool(split_by_worker)
        self.skip_malformed = bool(skip_malformed)
        if self.fields["category"] is None:
            raise InvalidArgument("fields: the category is needed")

    def _items(self) -> Iterator[Any]:
        info = _data.get_worker_info()
        mapped = (hasattr(self.dataset, "__getitem__") and hasattr(self.dataset, "__len__")
                  and not isinstance(self.dataset, _data.IterableDataset))
        if mapped:
            start, step = (info.id, info.num_workers) if info and self.split_by_worker else (0, 1)
            return (self.dataset[i] for i in range(start, len(self.dataset), step))
        items = iter(self.dataset)
        if info is not None and self.split_by_worker and info.num_workers > 1:
            return itertools.islice(items, info.id, None, info.num_workers)
        return items

    def _keep(self, snap, batch: list, first: int) -> Iterator[Any]:
        def column(key):
            return [_get(item, key) for item in batch] if key is not None else None
        id_key = self.fields["id"]
        ids = column(id_key) if id_key is not None else [str(first + i) for i in range(len(batch))]
        subjects = column(self.fields["subjects"])
        accounts = column(self.fields["account"])
        signals = {f: column(k) for f, k in self.signals.items()}
        mask, _ = snap._filter_rows(self.purpose, ids, column(self.fields["category"]), subjects,
                                    accounts, signals, self.at, self.skip_malformed, 1)
        return (item for item, keep in zip(batch, mask) if keep)

    def __iter__(self) -> Iterator[Any]:
        snap = _gate.load(self.snapshot_path)  # once per process, checked against its hash
        batch: list = []
        n = 0
        for item in self._items():
            batch.append(item)
            if len(batch) == self.batch_size:
                yield from self._keep(snap, batch, n)
                n += len(batch)
                batch = []
        if batch:
            yield from self._keep(snap, batch, n)


class _AnyKey:
    """A container that holds every key (items are checked one by one, not up front)."""

    def __contains__(self, key) -> bool:
        return True


def _get(item: Any, key: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(key)
    return getattr(item, key, None)
