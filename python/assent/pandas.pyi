from typing import Any, Mapping, Optional, Tuple, Union
import pandas as pd
from . import Ledger, Snapshot, Time

def filter(df: pd.DataFrame, snapshot: Union[str, Snapshot, Ledger], purpose: str, *,
           id: str = ..., category: str = ..., subjects: Optional[str] = ...,
           account: Optional[str] = ..., signals: Union[str, None, Mapping[str, str]] = ...,
           at: Time = ..., skip_malformed: bool = ..., threads: int = ...
           ) -> Tuple[pd.DataFrame, dict[str, Any]]: ...
