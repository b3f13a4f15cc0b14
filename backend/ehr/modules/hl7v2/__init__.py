"""HL7 v2 interfaces (ADR 0033): MLLP and HTTP intake stored before ACK, conversion to FHIR
by the HL7 v2-to-FHIR IG in background jobs, dead letters and replay.

The public surface (the entrypoints and other modules import only this):

``router``            ``/api/hl7v2`` (HTTP intake, inbox, sender registrations)
``JOBS``              the worker's ``hl7v2.convert``, ``hl7v2.deliver`` and ``hl7v2.prune``
``HANDLERS``          the worker's ``hl7v2.outbound`` (fhir.changed → ORU^R01 / ADT^A08 queued)
``serve_listener``    the MLLP listener (``ehr hl7 listen``)
``Listener``          the same, started and stopped by the caller (tests, benchmarks)
``receive_payload``   store-before-ACK for one message or a batch (the listener's and HTTP's path)
``register_sender``   a sender registration (CLI, seed)
``replay``            queue stored messages for conversion again
``inbox``             listing and reading the inbox and registrations
``destinations``      outbound destinations and their queues; ``deliver_pending``,
                      ``replay_outbound``
``parse_message``     the ER7 parser (``Message``, ``MessageRejected``; ``decode``, ``split_batch``)
"""

from ehr.modules.hl7v2 import destinations, inbox
from ehr.modules.hl7v2.conversion import CONVERT, convert_message, replay
from ehr.modules.hl7v2.delivery import DELIVER, deliver_pending
from ehr.modules.hl7v2.listener import Listener, serve_listener
from ehr.modules.hl7v2.mllp import END_BLOCK, START_BLOCK, FrameReader, frame_bytes
from ehr.modules.hl7v2.outbound import (
    HANDLERS,
    on_fhir_change,
    replay_outbound,
    source_of,
)
from ehr.modules.hl7v2.parsing import Message, MessageRejected, decode, parse_message, split_batch
from ehr.modules.hl7v2.retention import PRUNE, prune_messages
from ehr.modules.hl7v2.router import (
    ER7_MEDIA_TYPE,
    destination_out,
    message_out,
    outbound_out,
    router,
    sender_out,
)
from ehr.modules.hl7v2.routing import register_sender
from ehr.modules.hl7v2.schemas import DestinationCreate, SenderCreate
from ehr.modules.hl7v2.service import Answer, Reception, receive_payload

# The worker's jobs and event handlers of this module.
JOBS = (CONVERT, DELIVER, PRUNE)

__all__ = [
    "DELIVER",
    "END_BLOCK",
    "ER7_MEDIA_TYPE",
    "HANDLERS",
    "JOBS",
    "START_BLOCK",
    "Answer",
    "DestinationCreate",
    "FrameReader",
    "Listener",
    "Message",
    "MessageRejected",
    "Reception",
    "SenderCreate",
    "convert_message",
    "decode",
    "deliver_pending",
    "destination_out",
    "destinations",
    "frame_bytes",
    "inbox",
    "message_out",
    "on_fhir_change",
    "outbound_out",
    "parse_message",
    "prune_messages",
    "receive_payload",
    "register_sender",
    "replay",
    "replay_outbound",
    "router",
    "sender_out",
    "serve_listener",
    "source_of",
    "split_batch",
]
