from typing import Any, Mapping, Optional, Sequence, Tuple, Union
import dask.dataframe as dd
from . import Snapshot, Time

def filter(ddf: dd.DataFrame, snapshot_path: Union[str, Snapshot], purpose: str, *,
           id: str = ..., category: str = ..., subjects: Optional[str] = ...,
           account: Optional[str] = ..., signals: Union[str, None, Mapping[str, str]] = ...,
           at: Time = ..., skip_malformed: bool = ...) -> Tuple[dd.DataFrame, dict[str, Any]]: ...
def filter_jsonl(paths: Sequence[str], snapshot_path: Union[str, Snapshot], purpose: str,
                 out_dir: str, *, fields: Optional[Mapping[str, str]] = ..., at: Time = ...,
                 skip_malformed: bool = ..., threads: int = ...) -> dict[str, Any]: ...
