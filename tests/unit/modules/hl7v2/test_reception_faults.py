"""Store before ACK when the inbox cannot be written: the sender gets a negative ACK ("not
stored; resend"), never an AA; MSH-15 decides which acknowledgements are sent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import OperationalError

from ehr.core.config import Settings
from ehr.modules.hl7v2.parsing import parse_message
from ehr.modules.hl7v2.service import receive, receive_payload

MESSAGE = (
    "MSH|^~\\&|LAB|HOSP|EHR|EHR|20250101120000||ADT^A01^ADT_A01|CTRL1|P|2.5.1{tail}\r"
    "PID|1||123^^^HOSP^MR||Doe^Jane||19800101|F\r"
)


class _DatabaseDown:
    """A sessionmaker whose sessions fail like PostgreSQL being unreachable."""

    def __call__(self) -> Any:
        @contextlib.asynccontextmanager
        async def broken() -> AsyncIterator[Any]:
            raise OperationalError("SELECT 1", {}, OSError("connection refused"))
            yield  # pragma: no cover - never reached

        return broken()


def _msa(ack: str) -> list[str]:
    return next(line for line in ack.split("\r") if line.startswith("MSA")).split("|")


async def test_a_message_that_cannot_be_stored_gets_ar_not_aa() -> None:
    reception = await receive(
        _DatabaseDown(),  # type: ignore[arg-type]
        Settings(),
        MESSAGE.format(tail="").encode(),
        channel="mllp",
    )
    assert reception.code == "AR"
    assert reception.message_id is None
    assert reception.ack is not None
    msa = _msa(reception.ack)
    assert msa[1:3] == ["AR", "CTRL1"]
    err = next(line for line in reception.ack.split("\r") if line.startswith("ERR"))
    assert "207" in err  # application internal error: resend
    assert parse_message(reception.ack).header.message_type == "ACK"


async def test_enhanced_mode_gets_cr_and_ne_gets_nothing() -> None:
    enhanced = await receive(
        _DatabaseDown(),  # type: ignore[arg-type]
        Settings(),
        MESSAGE.format(tail="|||AL|AL"),
        channel="mllp",
    )
    assert enhanced.code == "CR"
    assert enhanced.ack is not None
    assert _msa(enhanced.ack)[1] == "CR"
    silent = await receive(
        _DatabaseDown(),  # type: ignore[arg-type]
        Settings(),
        MESSAGE.format(tail="|||NE|AL"),
        channel="mllp",
    )
    assert silent.code == "CR"
    assert silent.ack is None  # MSH-15 NE: no accept acknowledgement, even a negative one


async def test_garbage_is_refused_without_touching_the_database() -> None:
    answer = await receive_payload(
        _DatabaseDown(),  # type: ignore[arg-type]
        Settings(),
        b"\x00\x01 definitely not HL7",
        channel="http",
    )
    (reception,) = answer.receptions
    assert reception.code == "AR"
    assert answer.ack is not None
    assert _msa(answer.ack)[1] == "AR"
