"""``ehr hl7 listen|send|senders|inbox|dead-letters|replay|destinations|outbound``: HL7 v2
interfaces (ADR 0033).

``listen`` runs the MLLP listener until SIGTERM. ``send FILE`` is a test client: each message
of the file (or batch) is framed, sent and its ACK printed — exit 1 when any ACK is not
AA/CA. The inbox commands print one JSON document per line, without message bodies (bodies
are read through the audited API); like the other ``ehr`` commands, the operator's shell is
not audited as a request.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import Hl7Sender
from ehr.core.observability import configure_logging
from ehr.entrypoints.cli.runner import fail, run, settings_or_exit
from ehr.fhir import FhirClient
from ehr.modules import hl7v2
from ehr.platform.tenancy import get_tenant_by_slug

__all__ = ["hl7_app"]

hl7_app = typer.Typer(
    help="HL7 v2 interfaces: MLLP listener, test sender, senders, inbox, replay.",
    no_args_is_help=True,
)
senders_app = typer.Typer(help="Registered HL7 v2 senders of a tenant.", no_args_is_help=True)
hl7_app.add_typer(senders_app, name="senders")

TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant slug.")]
OptionalTenant = Annotated[
    str | None, typer.Option("--tenant", help="Tenant slug (default: every tenant).")
]


async def _tenant_id(session: AsyncSession, slug: str | None) -> uuid.UUID | None:
    return None if slug is None else (await get_tenant_by_slug(session, slug)).id


@hl7_app.command("listen")
def listen_command(
    host: Annotated[str | None, typer.Option(help="Default EHR_HL7__MLLP_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default EHR_HL7__MLLP_PORT.")] = None,
) -> None:
    """Run the MLLP listener until SIGTERM (stored before ACK; conversion by `ehr worker`)."""
    settings = settings_or_exit()
    configure_logging(settings.log)
    asyncio.run(hl7v2.serve_listener(settings, host=host, port=port))


async def _send(
    messages: list[str], host: str, port: int, *, tls: bool, insecure: bool, wait: float
) -> list[str]:
    context: ssl.SSLContext | None = None
    if tls:
        context = ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), wait)
    frames = hl7v2.FrameReader(reader, max_bytes=64 * 1024 * 1024, idle_timeout=wait)
    answers: list[str] = []
    try:
        for message in messages:
            writer.write(hl7v2.frame_bytes(message))
            await writer.drain()
            frame = await frames.next()
            if frame is None:
                raise TimeoutError("no acknowledgement")
            answers.append(frame.payload.decode("utf-8", errors="replace"))
    finally:
        writer.close()
    return answers


@hl7_app.command("send")
def send_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Default EHR_HL7__MLLP_PORT.")] = None,
    tls: Annotated[bool, typer.Option(help="MLLP over TLS.")] = False,
    insecure: Annotated[bool, typer.Option(help="TLS without certificate checks.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per ACK.")] = 30.0,
) -> None:
    """Send the message(s) of FILE over MLLP, one at a time; print each ACK."""
    settings = settings_or_exit()
    target = port if port is not None else settings.hl7.mllp_port
    try:
        messages, _ = hl7v2.split_batch(hl7v2.decode(file.read_bytes()))
    except hl7v2.MessageRejected as exc:
        raise fail("hl7 send", exc.reason) from None
    try:
        answers = asyncio.run(
            _send(messages, host, target, tls=tls, insecure=insecure, wait=timeout)
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise fail("hl7 send", f"{type(exc).__name__}: {exc}", code=1) from None
    refused = False
    for answer in answers:
        typer.echo(answer.replace("\r", "\n").rstrip("\n"))
        typer.echo("")
        code = _ack_code(answer)
        refused = refused or code not in {"AA", "CA"}
    if refused:
        raise typer.Exit(1)


def _ack_code(answer: str) -> str:
    for line in answer.replace("\n", "\r").split("\r"):
        if line.startswith("MSA"):
            parts = line.split(line[3:4] or "|")
            return parts[1] if len(parts) > 1 else ""
    return ""


@senders_app.command("add")
def senders_add_command(
    tenant: TenantOption,
    name: Annotated[str, typer.Option(help="A label (`lab-main`): the metrics' sender label.")],
    sending_application: Annotated[str, typer.Option(help="MSH-3 exactly.")],
    sending_facility: Annotated[str, typer.Option(help="MSH-4 exactly.")],
    message_type: Annotated[
        list[str], typer.Option("--message-type", help="ADT_A01, ORU_*, * (repeatable).")
    ],
    receiving_application: Annotated[str, typer.Option(help="MSH-5 to match (any).")] = "",
    receiving_facility: Annotated[str, typer.Option(help="MSH-6 to match (any).")] = "",
    processing_id: Annotated[
        list[str] | None, typer.Option("--processing-id", help="P (default), T, D.")
    ] = None,
    ack_destination: Annotated[
        uuid.UUID | None,
        typer.Option(help="Destination (taking ACK) for its enhanced-mode application ACKs."),
    ] = None,
) -> None:
    """Register a sender for a tenant; prints the registration."""
    body = hl7v2.SenderCreate(
        name=name,
        sending_application=sending_application,
        sending_facility=sending_facility,
        receiving_application=receiving_application,
        receiving_facility=receiving_facility,
        message_types=message_type,
        processing_ids=processing_id or ["P"],
        ack_destination_id=ack_destination,
    )

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        tenant_id = await _tenant_id(session, tenant)
        assert tenant_id is not None  # noqa: S101 - --tenant is required
        if body.ack_destination_id is not None:
            await hl7v2.destinations.ack_destination(session, tenant_id, body.ack_destination_id)
        sender = await hl7v2.register_sender(
            session,
            tenant_id=tenant_id,
            name=body.name,
            sending_application=body.sending_application,
            sending_facility=body.sending_facility,
            receiving_application=body.receiving_application,
            receiving_facility=body.receiving_facility,
            message_types=body.message_types,
            processing_ids=body.processing_ids,
            ack_destination_id=body.ack_destination_id,
            created_by="operator:cli",
        )
        typer.echo(_sender_json(sender))

    run("hl7 senders add", work)


def _sender_json(sender: Hl7Sender) -> str:
    return hl7v2.sender_out(sender).model_dump_json()


@senders_app.command("list")
def senders_list_command(tenant: OptionalTenant = None) -> None:
    """Registered senders (one JSON document per line)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        for sender in await hl7v2.inbox.list_senders(session, await _tenant_id(session, tenant)):
            typer.echo(_sender_json(sender))

    run("hl7 senders list", work)


@senders_app.command("disable")
def senders_disable_command(sender_id: uuid.UUID, tenant: OptionalTenant = None) -> None:
    """Refuse a sender's messages from now on (AR)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        sender = await hl7v2.inbox.disable_sender(
            session, await _tenant_id(session, tenant), sender_id
        )
        typer.echo(_sender_json(sender))

    run("hl7 senders disable", work)


@senders_app.command("ack-destination")
def senders_ack_destination_command(
    sender_id: uuid.UUID,
    destination: Annotated[
        uuid.UUID | None,
        typer.Option(help="A destination taking ACK; omitted: application ACKs are not sent."),
    ] = None,
    tenant: OptionalTenant = None,
) -> None:
    """Set where a sender's enhanced-mode application ACKs are sent."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        sender = await hl7v2.inbox.set_ack_destination(
            session, await _tenant_id(session, tenant), sender_id, destination
        )
        typer.echo(_sender_json(sender))

    run("hl7 senders ack-destination", work)


def _print_messages(
    tenant: str | None, *, status: str | None, control_id: str | None, limit: int
) -> None:
    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        page = await hl7v2.inbox.list_messages(
            session,
            await _tenant_id(session, tenant),
            status=status,
            control_id=control_id,
            limit=limit,
        )
        for row in page.items:
            typer.echo(hl7v2.message_out(row).model_dump_json())

    run("hl7 inbox", work)


@hl7_app.command("inbox")
def inbox_command(
    tenant: OptionalTenant = None,
    status: Annotated[
        str | None, typer.Option(help="accepted, converted, rejected, failed, dead.")
    ] = None,
    control_id: Annotated[str | None, typer.Option(help="MSH-10.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """Received messages, newest first (no bodies)."""
    _print_messages(tenant, status=status, control_id=control_id, limit=limit)


@hl7_app.command("dead-letters")
def dead_letters_command(
    tenant: OptionalTenant = None, limit: Annotated[int, typer.Option(min=1, max=10000)] = 50
) -> None:
    """Messages whose conversion gave up, with the reason."""
    _print_messages(tenant, status="dead", control_id=None, limit=limit)


@hl7_app.command("replay")
def replay_command(
    message_id: Annotated[list[uuid.UUID] | None, typer.Argument(help="Message ids.")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Every dead letter.")] = False,
    tenant: OptionalTenant = None,
) -> None:
    """Queue messages for conversion again (after a fix): ids, or --dead."""
    if not message_id and not dead:
        raise fail("hl7 replay", "name message ids or --dead")

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        queued = await hl7v2.replay(
            session,
            tenant_id=await _tenant_id(session, tenant),
            message_ids=message_id or (),
            status="dead" if dead and not message_id else None,
        )
        typer.echo(json.dumps({"queued": [str(identifier) for identifier in queued]}))

    run("hl7 replay", work)


destinations_app = typer.Typer(
    help="Outbound HL7 v2 destinations of a tenant (ORU^R01, ADT^A08 over MLLP).",
    no_args_is_help=True,
)
hl7_app.add_typer(destinations_app, name="destinations")
outbound_app = typer.Typer(help="Outbound HL7 v2 messages: state, replay.", no_args_is_help=True)
hl7_app.add_typer(outbound_app, name="outbound")


@destinations_app.command("add")
def destinations_add_command(
    tenant: TenantOption,
    name: Annotated[str, typer.Option(help="A label (`lis-main`).")],
    host: Annotated[str, typer.Option(help="The receiver's MLLP host.")],
    port: Annotated[int, typer.Option(min=1, max=65535)],
    message_type: Annotated[
        list[str], typer.Option("--message-type", help="ORU_R01, ADT_A08, ACK (repeatable).")
    ],
    receiving_application: Annotated[str, typer.Option(help="MSH-5 of what is sent.")],
    receiving_facility: Annotated[str, typer.Option(help="MSH-6 of what is sent.")],
    tls: Annotated[bool, typer.Option(help="MLLP over TLS.")] = False,
) -> None:
    """Register a destination; prints it."""
    body = hl7v2.DestinationCreate.model_validate(
        {
            "name": name,
            "host": host,
            "port": port,
            "tls": tls,
            "message_types": message_type,
            "receiving_application": receiving_application,
            "receiving_facility": receiving_facility,
        }
    )

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        tenant_id = await _tenant_id(session, tenant)
        assert tenant_id is not None  # noqa: S101 - --tenant is required
        destination = await hl7v2.destinations.register_destination(
            session,
            tenant_id=tenant_id,
            name=body.name,
            host=body.host,
            port=body.port,
            tls=body.tls,
            message_types=body.message_types,
            receiving_application=body.receiving_application,
            receiving_facility=body.receiving_facility,
            created_by="operator:cli",
        )
        typer.echo(hl7v2.destination_out(destination).model_dump_json())

    run("hl7 destinations add", work)


@destinations_app.command("list")
def destinations_list_command(tenant: OptionalTenant = None) -> None:
    """Destinations (one JSON document per line)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        tenant_id = await _tenant_id(session, tenant)
        for destination in await hl7v2.destinations.list_destinations(session, tenant_id):
            typer.echo(hl7v2.destination_out(destination).model_dump_json())

    run("hl7 destinations list", work)


@destinations_app.command("disable")
def destinations_disable_command(destination_id: uuid.UUID, tenant: OptionalTenant = None) -> None:
    """Stop sending to a destination (its queue waits)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        destination = await hl7v2.destinations.disable_destination(
            session, await _tenant_id(session, tenant), destination_id
        )
        typer.echo(hl7v2.destination_out(destination).model_dump_json())

    run("hl7 destinations disable", work)


@outbound_app.command("list")
def outbound_list_command(
    tenant: OptionalTenant = None,
    status: Annotated[str | None, typer.Option(help="pending, acked, sent, parked.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """Outbound messages, newest first (no bodies)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        rows = await hl7v2.destinations.list_outbound(
            session, await _tenant_id(session, tenant), status=status, limit=limit
        )
        for row in rows:
            typer.echo(hl7v2.outbound_out(row).model_dump_json())

    run("hl7 outbound list", work)


@outbound_app.command("replay")
def outbound_replay_command(
    message_id: Annotated[list[uuid.UUID], typer.Argument(help="Parked message ids.")],
    tenant: OptionalTenant = None,
) -> None:
    """Send parked messages again."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        queued = await hl7v2.replay_outbound(session, await _tenant_id(session, tenant), message_id)
        typer.echo(json.dumps({"queued": [str(identifier) for identifier in queued]}))

    run("hl7 outbound replay", work)
