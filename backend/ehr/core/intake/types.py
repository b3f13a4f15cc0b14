"""Field types whose validation matches their documented format exactly.

Pydantic's lax mode turns numbers (``0``) and numeric strings (``"0"``) into dates and datetimes
(Unix time); the OpenAPI document says ``format: date``/``date-time``. These types take ISO 8601
text only (and the values themselves, from Python callers).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, BeforeValidator

__all__ = ["IsoAwareDateTime", "IsoDate", "IsoDateTime"]

_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*")


def _date_text(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


def _datetime_text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATETIME.fullmatch(value):
        return value
    raise ValueError("must be an ISO 8601 date-time (YYYY-MM-DDThh:mm:ss with an offset)")


IsoDate = Annotated[dt.date, BeforeValidator(_date_text)]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_datetime_text)]
IsoAwareDateTime = Annotated[AwareDatetime, BeforeValidator(_datetime_text)]
