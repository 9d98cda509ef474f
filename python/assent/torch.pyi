from typing import Any, Iterator, Mapping, Optional, Union
import torch.utils.data
from . import Snapshot, Time

class ConsentFilter(torch.utils.data.IterableDataset[Any]):
    def __init__(self, dataset: Any, snapshot: Union[str, Snapshot], purpose: str,
                 fields: Optional[Mapping[str, Optional[str]]] = ..., *,
                 signals: Union[str, None, Mapping[str, str]] = ..., at: Time = ...,
                 batch_size: int = ..., split_by_worker: bool = ...,
                 skip_malformed: bool = ...) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
