"""The delivery job (``webhooks.deliver``): one job = one attempt of one delivery.

1. read the delivery and its endpoint (a short transaction); nothing to do if the delivery is
   finished or this job is no longer its current attempt (a replaced or duplicate job);
2. check the target again (SSRF; the attempt connects to the address checked here) and POST,
   outside any transaction, bounded by the timeouts;
3. record the attempt in ONE transaction (``run.step``, under the job's fencing token): the
   delivery's status and log fields, the endpoint's failure streak (disabled when sustained),
   and — when it is to be retried — the next attempt's job, deferred ``backoff`` later.

Retries are new jobs, not procrastinate retries, so each waits its own full-jitter delay or the
receiver's ``Retry-After``. A job failing in our own code (the database down) is retried by the
queue (``max_attempts`` 3) and repeats the attempt: receivers deduplicate on ``webhook-id``.
Each delivery is its own job, so a hanging target holds one worker slot for the total timeout
at most and never delays another endpoint's deliveries beyond that.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import get_settings
from ehr.core.db.models import WebhookDelivery, WebhookEndpoint
from ehr.platform import jobs
from ehr.platform.webhooks.delivery import AttemptResult, Outcome, backoff, post_signed
from ehr.platform.webhooks.metrics import ATTEMPT_LATENCY, ATTEMPTS, ENDPOINTS_DISABLED
from ehr.platform.webhooks.service import (
    allow_http,
    delivery_body,
    endpoint_secret,
    queue_attempt,
)
from ehr.platform.webhooks.settings import WebhooksSettings
from ehr.platform.webhooks.targets import TargetRefused, resolve_target

__all__ = ["DELIVER", "deliver", "record_attempt", "should_disable"]

logger = structlog.get_logger(__name__)

KIND: Final = "webhooks.deliver"


def should_disable(endpoint: WebhookEndpoint, now: datetime, webhooks: WebhooksSettings) -> bool:
    """A sustained failure: ``disable_after_failures`` failed attempts in a row, the first of
    them at least ``disable_after_seconds`` ago."""
    if endpoint.consecutive_failures < webhooks.disable_after_failures:
        return False
    since = endpoint.failing_since or now
    return (now - since).total_seconds() >= webhooks.disable_after_seconds


async def record_attempt(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    job_id: uuid.UUID,
    result: AttemptResult,
    webhooks: WebhooksSettings,
) -> Mapping[str, Any]:
    """Store one attempt's outcome (see the module); what it decided."""
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.job_id != job_id:
        return {"recorded": False}
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
    now = datetime.now(UTC)
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_latency_ms = result.latency_ms
    delivery.last_error = result.error
    delivery.updated_at = now
    delivery.next_attempt_at = None
    if result.outcome is Outcome.SUCCEEDED:
        delivery.status = "succeeded"
        delivery.delivered_at = now
        if endpoint is not None:
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
            endpoint.last_success_at = now
        decision = "succeeded"
    else:
        disabled = False
        # A disabled endpoint's waiting deliveries end here without lengthening its streak.
        if endpoint is not None and endpoint.enabled:
            endpoint.consecutive_failures += 1
            endpoint.failing_since = endpoint.failing_since or now
            if should_disable(endpoint, now, webhooks):
                endpoint.enabled = False
                endpoint.disabled_reason = "failing"
                endpoint.disabled_at = now
                disabled = True
                ENDPOINTS_DISABLED.inc()
                logger.warning(
                    "webhooks.endpoint.disabled",
                    endpoint_id=str(endpoint.id),
                    failures=endpoint.consecutive_failures,
                )
            endpoint.updated_at = now
        retry = (
            result.outcome is Outcome.RETRY
            and delivery.attempts < webhooks.max_attempts
            and endpoint is not None
            and endpoint.enabled
        )
        if retry:
            delay = backoff(
                delivery.attempts,
                base=webhooks.retry_base_seconds,
                cap=webhooks.retry_max_seconds,
                floor=webhooks.retry_min_seconds,
            )
            if result.retry_after_seconds is not None:
                delay = max(delay, min(result.retry_after_seconds, webhooks.retry_max_seconds))
            delivery.status = "retrying"
            next_at = now + timedelta(seconds=delay)
            await queue_attempt(session, delivery, DELIVER, schedule_at=next_at)
            decision = "retrying"
        else:
            delivery.status = "failed"
            if disabled:
                delivery.last_error = f"{result.error}; endpoint_disabled"[:200]
            decision = "failed"
    await session.flush()
    ATTEMPTS.labels(decision).inc()
    ATTEMPT_LATENCY.observe(result.latency_ms / 1000)
    logger.info(
        "webhooks.delivery.attempted",
        delivery_id=str(delivery.id),
        endpoint_id=str(delivery.endpoint_id),
        attempt=delivery.attempts,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        error=result.error,
        decision=decision,
    )
    return {"recorded": True, "decision": decision, "attempt": delivery.attempts}


async def deliver(run: jobs.JobRun) -> Mapping[str, Any] | None:
    """One attempt of the delivery named in ``run.args`` (see the module)."""
    settings = get_settings()
    webhooks = settings.webhooks
    delivery_id = uuid.UUID(str(run.args["delivery_id"]))
    async with run.sessionmaker() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.job_id != run.job_id:
            return {"skipped": "not_current"}
        if delivery.status not in ("pending", "retrying"):
            return {"skipped": delivery.status}
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None:
            return {"skipped": "endpoint_gone"}
        url, enabled = endpoint.url, endpoint.enabled
        secret = endpoint_secret(settings, endpoint)
        body = delivery_body(delivery.payload)
        message_id = str(delivery.event_id)
    if not enabled:
        result = AttemptResult(Outcome.GIVE_UP, None, 0, "endpoint_disabled")
    else:
        try:
            target = await resolve_target(
                url,
                allow_http=allow_http(settings, webhooks),
                allow_private=webhooks.allow_private_targets,
            )
        except TargetRefused as exc:
            reason = str(exc.extra.get("reason", "unresolvable"))
            outcome = Outcome.RETRY if reason == "unresolvable" else Outcome.GIVE_UP
            result = AttemptResult(outcome, None, 0, f"target_refused:{reason}")
        else:
            result = await post_signed(
                target, url, secret=secret, message_id=message_id, body=body, settings=webhooks
            )

    async def record(session: AsyncSession) -> Mapping[str, Any]:
        return await record_attempt(session, delivery_id, run.job_id, result, webhooks)

    return await run.step("attempt", record)


DELIVER: Final = jobs.define(
    KIND,
    deliver,
    max_attempts=3,
    retry_base_seconds=2.0,
    retry_max_seconds=60.0,
    description="POST one webhook delivery (one attempt; retries are new jobs).",
)
