"""Retry rules: what is retried, full-jitter backoff bounds, Retry-After, event-type patterns,
and when a failing endpoint is disabled."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ehr.core.db.models import WebhookEndpoint
from ehr.platform.webhooks.attempts import should_disable
from ehr.platform.webhooks.delivery import Outcome, backoff, classify, retry_after
from ehr.platform.webhooks.matching import matches, valid
from ehr.platform.webhooks.service import delivery_body
from ehr.platform.webhooks.settings import WebhooksSettings


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCEEDED),
        (204, Outcome.SUCCEEDED),
        (301, Outcome.GIVE_UP),
        (302, Outcome.GIVE_UP),
        (400, Outcome.GIVE_UP),
        (401, Outcome.GIVE_UP),
        (404, Outcome.GIVE_UP),
        (408, Outcome.RETRY),
        (410, Outcome.GIVE_UP),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_classify(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_backoff_is_full_jitter_within_bounds() -> None:
    rng = random.Random(7)
    for attempt in range(1, 30):
        ceiling = min(600.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff(attempt, base=2.0, cap=600.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: spread over the whole range, not only its upper half.
        assert min(delays) < ceiling / 4
        assert max(delays) > ceiling * 3 / 4


def test_backoff_floor() -> None:
    rng = random.Random(1)
    assert all(backoff(1, base=0.01, cap=1.0, floor=1.0, rng=rng) == 1.0 for _ in range(20))


def test_retry_after_seconds_and_date() -> None:
    now = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert retry_after("120") == 120.0
    assert retry_after("Mon, 07 Dec 2026 08:01:00 GMT", now=now) == 60.0
    assert retry_after("Mon, 07 Dec 2026 07:00:00 GMT", now=now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_patterns() -> None:
    assert matches(["result.*"], "result.critical")
    assert matches(["result.*"], "result.recorded")
    assert not matches(["result.*"], "results.critical")
    assert not matches(["result.*"], "order.signed")
    assert matches(["order.signed"], "order.signed")
    assert not matches(["order.signed"], "order.signed_again")
    assert matches(["*"], "patient.updated")
    assert all(valid(p) for p in ("*", "result.*", "order.signed", "fhir.changed.patient"))
    assert not any(valid(p) for p in ("result*", "*.critical", "Result.x", "a..b", ""))


def _endpoint(failures: int, since: datetime | None) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=uuid.uuid4(), consecutive_failures=failures, failing_since=since, enabled=True
    )


def test_disabled_only_after_n_failures_over_m_hours() -> None:
    rules = WebhooksSettings(disable_after_failures=5, disable_after_seconds=3600)
    now = datetime.now(UTC)
    assert not should_disable(_endpoint(4, now - timedelta(hours=5)), now, rules)
    assert not should_disable(_endpoint(50, now - timedelta(minutes=30)), now, rules)
    assert should_disable(_endpoint(5, now - timedelta(hours=1)), now, rules)


def test_the_body_is_the_envelope_in_the_standard_webhooks_shape() -> None:
    payload = {"id": "e1", "type": "result.critical", "occurred_at": "2026-12-07T08:00:00Z"}
    body = delivery_body(payload)
    assert body == delivery_body(dict(reversed(payload.items())))
    assert body.startswith(b'{"data":{')
    assert b'"type":"result.critical"' in body
