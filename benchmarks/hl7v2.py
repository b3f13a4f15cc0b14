"""HL7 v2 intake over MLLP vs the same FHIR transactions posted to HAPI directly (target P7).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/hl7v2.py \
        [--messages 60] [--concurrency 4] [--rounds 5] [--warmup 16] [--durability on]

One run, on the running dev stack (PostgreSQL, HAPI, Redis; nothing is started or stopped in it):

1. Throughput, interleaved rounds (order rotating), C connections / C concurrent posts each:
     mllp         N generated ADT^A01 + ORU^R01 messages (distinct patients, visits, orders) sent
                  to ``ehr hl7 listen`` (a subprocess on a free port), each connection
                  send → ACK → next; the worker is paused (SIGSTOP) while they arrive, so this
                  is store-before-ACK alone: parse, route, duplicate check, the conversion's dry
                  run, one PostgreSQL commit of the raw message + ACK + conversion job. NOT the
                  conversion: then the worker is resumed and the round's conversions are timed.
     mllp+worker  the same with the worker converting meanwhile (as production runs).
     direct       the FHIR transaction Bundles ``to_transaction`` makes for an mllp round's very
                  messages (the oldest not posted yet), posted straight to HAPI
                  (``TenantFhirClient.transaction``) into a second tenant's partition (so they
                  create, as the conversions do).
   Each sender names its own site's physicians and wards; ``--shared-staff`` makes them common,
   and concurrent conversions then race on HAPI's conditional creates (409 → dead letters).
   ACKed msgs/s and transactions/s, mllp ÷ direct (target ≥ 0.8); end to end (first frame
   written → the worker, a real ``ehr worker`` on the benchmark's own schema, has converted the
   round's last message) as converted msgs/s and its ratio to direct.
2. ACK latency (frame written → ACK read) p50/p95/p99 under that load (target p95 ≤ 100 ms),
   and at a fixed arrival rate (open model: latency from each message's scheduled time).
3. Parse rate of the dev corpus (tests/fixtures/hl7v2/**/*.hl7): our ``parse_message``, raw
   ``hl7.parse``, and hl7apy (pip-installed into /tmp for the run, never a project dependency).
4. Conversion rate in process: ``to_transaction`` of ADT^A01 and of ORU^R01.

Everything lives in a throwaway app schema (migrated, dropped at the end with its job queue and
event stream) with two tenants (HAPI partitions; their data and the partitions are deleted at the
end). PostgreSQL runs with production durability for the run (synchronous_commit=on for the
cluster, restored at the end), as benchmarks/fhir_gateway.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import glob
import importlib
import json
import math
import os
import platform
import random
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7
import sqlalchemy as sa
from load import probes
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import LogSettings, Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.migrate import upgrade
from ehr.core.db.models import Hl7Message, job_queue_schema
from ehr.core.observability import configure_logging
from ehr.devstack.processes import listening_pids
from ehr.devstack.stack import Stack
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.modules.hl7v2 import (
    FrameReader,
    MessageRejected,
    decode,
    frame_bytes,
    parse_message,
    register_sender,
    split_batch,
)
from ehr.modules.hl7v2.parsing import normalise
from ehr.modules.hl7v2.to_fhir import ConversionContext, to_transaction
from ehr.platform import events
from ehr.platform.tenancy import create_tenant
from ehr.platform.tenancy.partitions import delete_partition

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "fixtures" / "hl7v2"
HL7APY_DIR = Path(tempfile.gettempdir()) / "ehr-bench-hl7apy"
HL7APY_VERSION = "1.3.5"
PATIENCE_SECONDS = 60.0
FACILITY = "HOSP"

# --------------------------------------------------------------------------------------------
# Generated messages: realistic ADT^A01 and ORU^R01, every one of a distinct patient and visit
# or order (fields numbered as the HL7 tables number them).
# --------------------------------------------------------------------------------------------

FAMILIES = (
    "Garcia", "Smith", "Nguyen", "Okafor", "Johansson", "Kowalski", "Haddad", "Tanaka", "Muller",
    "O'Brien", "Rossi", "Novak", "Fernandes", "Kim", "Ivanova", "Mensah",
)  # fmt: skip
GIVEN = (
    ("Maria", "F"), ("James", "M"), ("Linh", "F"), ("Chidi", "M"), ("Ingrid", "F"),
    ("Piotr", "M"), ("Layla", "F"), ("Kenji", "M"), ("Anna", "F"), ("Sean", "M"),
)  # fmt: skip
STREETS = ("Main St", "Oak Ave", "Elm St", "Maple Dr", "Cedar Ln", "Lake Rd", "Hill St")
CITIES = (("Springfield", "IL", "62701"), ("Madison", "WI", "53703"), ("Columbus", "OH", "43215"))
RACES = (("2106-3", "White"), ("2054-5", "Black or African American"), ("2028-9", "Asian"))
MARITAL = (("M", "Married"), ("S", "Single"), ("W", "Widowed"), ("D", "Divorced"))
WARDS = ("4W", "5E", "3N", "ICU", "6S")
ATTENDING = ("Attending^Ann", "Baptiste^Jean", "Chen^Wei")
DIAGNOSES = (
    ("I10", "Essential (primary) hypertension"), ("E11.9", "Type 2 diabetes mellitus"),
    ("J18.9", "Pneumonia, unspecified organism"), ("N17.9", "Acute kidney failure"),
    ("I50.9", "Heart failure, unspecified"),
)  # fmt: skip
ALLERGENS = (("7980", "Penicillin G"), ("1191", "Aspirin"), ("2670", "Codeine"))
# A comprehensive metabolic panel: LOINC, name, UCUM unit, low, high, decimals.
PANEL = (
    ("2345-7", "Glucose", "mg/dL", 70.0, 99.0, 0),
    ("3094-0", "Urea nitrogen", "mg/dL", 7.0, 20.0, 0),
    ("2160-0", "Creatinine", "mg/dL", 0.6, 1.3, 2),
    ("2951-2", "Sodium", "mmol/L", 136.0, 145.0, 0),
    ("2823-3", "Potassium", "mmol/L", 3.5, 5.1, 1),
    ("2075-0", "Chloride", "mmol/L", 98.0, 107.0, 0),
    ("2028-9", "Carbon dioxide", "mmol/L", 22.0, 29.0, 0),
    ("17861-6", "Calcium", "mg/dL", 8.6, 10.3, 1),
    ("2885-2", "Protein", "g/dL", 6.0, 8.3, 1),
    ("1751-7", "Albumin", "g/dL", 3.5, 5.0, 1),
    ("1742-6", "Alanine aminotransferase", "U/L", 7.0, 56.0, 0),
    ("1920-8", "Aspartate aminotransferase", "U/L", 10.0, 40.0, 0),
    ("6768-6", "Alkaline phosphatase", "U/L", 44.0, 147.0, 0),
    ("1975-2", "Bilirubin.total", "mg/dL", 0.1, 1.2, 1),
)


def fields(name: str, values: dict[int, str]) -> str:
    """A segment from its numbered fields (1-based)."""
    return "|".join([name, *(values.get(n, "") for n in range(1, max(values) + 1))])


def _ts(base: datetime, minutes: int) -> str:
    moment = base.timestamp() + minutes * 60
    return datetime.fromtimestamp(moment, UTC).strftime("%Y%m%d%H%M%S+0000")


def _msh(app: str, event: str, control_id: str, stamp: str) -> str:
    """MSH-3/4 name the sender (its registration), MSH-12 2.5.1, MSH-18 UTF-8, original mode."""
    return (
        f"MSH|^~\\&|{app}|{FACILITY}|EHR|EHR|{stamp}||{event}|{control_id}|P|2.5.1|||||USA|"
        "UNICODE UTF-8"
    )


def _pid(key: str, number: int, rng: random.Random) -> str:
    family = FAMILIES[number % len(FAMILIES)]
    given, sex = GIVEN[number % len(GIVEN)]
    street = f"{rng.randint(1, 9999)} {STREETS[number % len(STREETS)]}"
    city, state, zip_code = CITIES[number % len(CITIES)]
    race, race_name = RACES[number % len(RACES)]
    marital, marital_name = MARITAL[number % len(MARITAL)]
    dob = f"{1930 + number % 80}{1 + number % 12:02d}{1 + number % 28:02d}"
    phone = f"{rng.randint(200, 999)}^{rng.randint(2000000, 9999999)}"
    return fields(
        "PID",
        {
            1: "1",
            3: f"M{key}^^^{FACILITY}^MR~{rng.randint(100000000, 899999999)}^^^USSSA^SS",
            5: f"{family}{key[-4:]}^{given}^{chr(65 + number % 26)}",
            6: f"Maiden{number % 50}",
            7: dob,
            8: sex,
            10: f"{race}^{race_name}^CDCREC",
            11: f"{street}^Apt {number % 30}^{city}^{state}^{zip_code}^USA^H",
            13: f"^PRN^PH^^1^{phone}~^NET^Internet^p{key}@example.org",
            15: "eng^English^ISO639",
            16: f"{marital}^{marital_name}^HL70002",
            18: f"A{key}^^^{FACILITY}^AN",
        },
    )


def _staff(site: int, number: int) -> str:
    """An attending physician (XCN) of the site: its own ids, so two senders' concurrent
    conversions never race on one conditional create (see --shared-staff)."""
    return f"{site + 1}{number % len(ATTENDING)}01^{ATTENDING[number % len(ATTENDING)]}^^^Dr^MD"


def adt_a01(
    control_id: str, key: str, number: int, app: str, rng: random.Random, site: int = 0
) -> str:
    """An inpatient admission: EVN, PID, NK1, PV1, PV2, AL1, two DG1. ``site``: which
    hospital's physicians and wards (one per sender)."""
    base = datetime(2025, 1, 2, 8, 0, tzinfo=UTC)
    stamp = _ts(base, number)
    partner_given, _ = GIVEN[(number + 1) % len(GIVEN)]
    attending = _staff(site, number)
    (dx1, dx1_name), (dx2, dx2_name) = rng.sample(DIAGNOSES, 2)
    allergen, allergen_name = ALLERGENS[number % len(ALLERGENS)]
    ward = f"{WARDS[number % len(WARDS)]}{site}"
    segments = [
        _msh(app, "ADT^A01^ADT_A01", control_id, stamp),
        fields("EVN", {1: "A01", 2: stamp, 5: "u123^Clerk^Pat"}),
        _pid(key, number, rng),
        fields(
            "NK1",
            {
                1: "1",
                2: f"{FAMILIES[number % len(FAMILIES)]}{key[-4:]}^{partner_given}",
                3: "SPO^Spouse^HL70063",
                5: f"^PRN^PH^^1^{rng.randint(200, 999)}^{rng.randint(2000000, 9999999)}",
                7: "EC^Emergency Contact^HL70131",
            },
        ),
        fields(
            "PV1",
            {
                1: "1",
                2: "I",
                3: f"{ward}^{400 + number % 12}^{'AB'[number % 2]}^{FACILITY}",
                4: "E^Emergency^HL70007",
                7: attending,
                10: "MED",
                14: "7",
                17: attending,
                18: "IN",
                19: f"V{key}^^^{FACILITY}^VN",
                44: _ts(base, number - 45),
            },
        ),
        fields("PV2", {3: f"{dx1}^{dx1_name}^I10", 8: _ts(base, number + 5 * 1440)}),
        fields(
            "AL1",
            {
                1: "1",
                2: "DA^Drug allergy^HL70127",
                3: f"{allergen}^{allergen_name}^RXNORM",
                4: "SV^Severe^HL70128",
                5: "Hives",
            },
        ),
        fields("DG1", {1: "1", 3: f"{dx1}^{dx1_name}^I10", 5: stamp, 6: "A"}),
        fields("DG1", {1: "2", 3: f"{dx2}^{dx2_name}^I10", 5: stamp, 6: "W"}),
    ]
    return "\r".join(segments) + "\r"


def oru_r01(
    control_id: str,
    key: str,
    number: int,
    app: str,
    rng: random.Random,
    results: int,
    site: int = 0,
) -> str:
    """A final chemistry panel: PID, PV1, ORC, OBR, ``results`` OBX (CMP analytes), an NTE."""
    base = datetime(2025, 1, 2, 6, 0, tzinfo=UTC)
    collected, resulted = _ts(base, number), _ts(base, number + 95)
    orderer = _staff(site, number + 1)
    segments = [
        _msh(app, "ORU^R01^ORU_R01", control_id, resulted),
        _pid(key, number, rng),
        fields(
            "PV1",
            {
                1: "1",
                2: "O",
                3: f"LAB{site}^^^{FACILITY}",
                7: orderer,
                19: f"V{key}^^^{FACILITY}^VN",
            },
        ),
        fields(
            "ORC",
            {1: "RE", 2: f"P{key}^EHR", 3: f"F{key}^LAB", 5: "CM", 9: collected, 12: orderer},
        ),
        fields(
            "OBR",
            {
                1: "1",
                2: f"P{key}^EHR",
                3: f"F{key}^LAB",
                4: "24323-8^Comprehensive metabolic panel^LN",
                7: collected,
                16: orderer,
                22: resulted,
                24: "CH",
                25: "F",
            },
        ),
    ]
    for index in range(results):
        loinc, name, unit, low, high, decimals = PANEL[index % len(PANEL)]
        value = rng.uniform(low * 0.8, high * 1.2)
        flag = "H" if value > high else "L" if value < low else "N"
        segments.append(
            fields(
                "OBX",
                {
                    1: str(index + 1),
                    2: "NM",
                    3: f"{loinc}^{name}^LN",
                    5: f"{value:.{decimals}f}",
                    6: f"{unit}^{unit}^UCUM",
                    7: f"{low:g}-{high:g}",
                    8: flag,
                    11: "F",
                    14: collected,
                    19: resulted,
                },
            )
        )
    segments.append(fields("NTE", {1: "1", 2: "L", 3: "Specimen received at 18 C."}))
    return "\r".join(segments) + "\r"


@dataclass
class Batch:
    """One round's messages of one variant: per connection (= per sender), in sending order."""

    prefix: str
    lanes: list[list[str]]

    @property
    def messages(self) -> list[str]:
        return [message for lane in self.lanes for message in lane]


class Generator:
    """Fresh batches: every message its own patient (MRN), visit and order; control ids
    ``<prefix>-<n>`` so a round's rows can be counted in the inbox."""

    def __init__(
        self,
        run: str,
        senders: Sequence[str],
        oru_share: float,
        results: int,
        *,
        shared_staff: bool = False,
    ) -> None:
        self.shared_staff = shared_staff
        self.run = run
        self.senders = senders
        self.oru_share = oru_share
        self.results = results
        self.count = 0
        self.rng = random.Random(run)

    def batch(self, size: int) -> Batch:
        self.count += 1
        prefix = f"{self.run}{self.count:03d}"
        lanes: list[list[str]] = [[] for _ in self.senders]
        share = self.oru_share
        for n in range(size):
            lane = n % len(self.senders)
            key = f"{prefix}{n:05d}"
            number = self.count * 100_000 + n
            control_id = f"{prefix}-{n:05d}"
            app = self.senders[lane]
            place = n // len(self.senders) + lane  # each lane mixes the types at ``share``
            is_oru = math.floor((place + 1) * share) > math.floor(place * share)
            site = 0 if self.shared_staff else lane
            message = (
                oru_r01(control_id, key, number, app, self.rng, self.results, site)
                if is_oru
                else adt_a01(control_id, key, number, app, self.rng, site)
            )
            lanes[lane].append(message)
        return Batch(prefix, lanes)


def bundles_of(batch: Batch, tenant: str) -> list[list[dict[str, Any]]]:
    """The transactions ``to_transaction`` makes for the batch's messages, lane by lane."""
    now = datetime.now(UTC)
    return [
        [
            to_transaction(
                parse_message(m), ConversionContext(uuid.uuid4().hex, now, tenant)
            ).bundle
            for m in lane
        ]
        for lane in batch.lanes
    ]


# --------------------------------------------------------------------------------------------
# Statistics and the header
# --------------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def spread(values: Sequence[float], digits: int = 1) -> str:
    """``median (min..max)``."""
    if not values:
        return "n/a"
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}..{max(values):.{digits}f})"
    )


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.1f} GiB RAM"
    load = "/".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} vCPU ({cpu}){mem}, load {load}; {platform.system()} "
        f"{platform.release()}; Python {sys.version.split()[0]}"
    )


def revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=REPO, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "backend/ehr/modules/hl7v2"],  # noqa: S607
            cwd=REPO, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} + uncommitted hl7v2 changes" if dirty else head


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def best_rate(count: int, seconds: Sequence[float]) -> float:
    return count / statistics.median(seconds)


# --------------------------------------------------------------------------------------------
# 3 and 4: in process
# --------------------------------------------------------------------------------------------


def corpus_messages() -> tuple[list[str], int, int]:
    """Every message of the dev corpus our parser accepts (batches split), the number of files
    and the number of messages refused (``sample_bad_*`` are malformed on purpose)."""
    files = sorted(glob.glob(str(CORPUS / "**" / "*.hl7"), recursive=True))
    accepted: list[str] = []
    refused = 0
    for name in files:
        text = decode(Path(name).read_bytes())
        try:
            messages, _ = split_batch(text)
        except MessageRejected:
            refused += 1
            continue
        for message in messages:
            try:
                parse_message(message)
            except MessageRejected:
                refused += 1
                continue
            accepted.append(normalise(message))
    return accepted, len(files), refused


def hl7apy_parser() -> tuple[Callable[[str], object] | None, str]:
    """hl7apy's ``parse_message`` from a ``pip install --target`` in /tmp (never the venv)."""
    with contextlib.suppress(ImportError):
        found = importlib.import_module("hl7apy.parser")
        return found.parse_message, f"hl7apy (importable: {found.__file__})"
    if not (HL7APY_DIR / "hl7apy").is_dir():
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--target", str(HL7APY_DIR), f"hl7apy=={HL7APY_VERSION}",
        ]  # fmt: skip
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=180)  # noqa: S603
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"hl7apy skipped: pip install --target {HL7APY_DIR} failed ({exc})"
    sys.path.append(str(HL7APY_DIR))
    try:
        found = importlib.import_module("hl7apy.parser")
    except ImportError as exc:
        return None, f"hl7apy skipped: not importable from {HL7APY_DIR} ({exc})"
    return found.parse_message, f"hl7apy {HL7APY_VERSION} from {HL7APY_DIR} (not in the project)"


def timed_loop(fn: Callable[[str], object], items: Sequence[str], seconds: float) -> float:
    """Items per second: whole passes over ``items`` until ``seconds`` have passed."""
    done = 0
    started = time.perf_counter()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def parse_phase(args: argparse.Namespace) -> None:
    messages, files, refused = corpus_messages()
    print(
        f"\n3. parse rate, dev corpus: {files} files -> {len(messages)} messages our parser "
        f"accepts ({refused} refused: the deliberately malformed samples), "
        f"{sum(len(m) for m in messages) / len(messages):.0f} chars each on average"
    )
    variants: dict[str, Callable[[str], object]] = {
        "parse_message (ours)": parse_message,
        "hl7.parse (python-hl7 0.4.5, raw)": hl7.parse,
    }
    apy_messages = messages
    apy, note = hl7apy_parser() if not args.no_hl7apy else (None, "hl7apy skipped (--no-hl7apy)")
    if apy is not None:
        parser = apy

        def apy_parse(text: str) -> object:
            return parser(text)

        apy_messages = []
        for message in messages:
            with contextlib.suppress(Exception):
                apy_parse(message)
                apy_messages.append(message)
        variants["hl7apy parse_message (defaults)"] = apy_parse
    print(f"   {note}")
    if apy is not None and len(apy_messages) != len(messages):
        print(
            f"   hl7apy refuses {len(messages) - len(apy_messages)} of them; its rate is over the "
            f"{len(apy_messages)} it parses (python-hl7's over all {len(messages)})"
        )
    for name, fn in variants.items():  # warm-up
        timed_loop(fn, apy_messages if name.startswith("hl7apy") else messages, 0.2)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_no in range(args.micro_rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            items = apy_messages if name.startswith("hl7apy") else messages
            rates[name].append(timed_loop(variants[name], items, args.micro_seconds))
    ours = statistics.median(rates[names[0]])
    print(f"   {'parser':36s} {'msgs/s median (min..max)':>28s} {'vs ours':>8s}")
    for name in names:
        mid = statistics.median(rates[name])
        print(f"   {name:36s} {spread(rates[name], 0):>28s} {mid / ours:8.2f}")
    raw = statistics.median(rates[names[1]])
    print(
        f"   our wrapper on top of hl7.parse: {1000 / ours - 1000 / raw:.3f} ms per message "
        f"({1000 / raw:.3f} ms python-hl7 + {1000 / ours - 1000 / raw:.3f} ms normalise/"
        "regular tree/header checks)"
    )


def conversion_phase(args: argparse.Namespace) -> None:
    generator = Generator("conv", [f"BENCH{i}" for i in range(4)], 0.5, args.results)
    batch = generator.batch(200)
    parsed = [parse_message(m) for m in batch.messages]
    by_type = {
        "ADT^A01": [m for m in parsed if m.header.event == "ADT_A01"],
        "ORU^R01": [m for m in parsed if m.header.event == "ORU_R01"],
    }
    context = ConversionContext(uuid.uuid4().hex, datetime.now(UTC), "bench")
    print(f"\n4. conversion in process: to_transaction (ORU with {args.results} OBX)")
    rates: dict[str, list[float]] = {}
    names = list(by_type)
    for name in names:
        sample = to_transaction(by_type[name][0], context)
        size = len(json.dumps(sample.bundle))
        print(f"   {name}: {sum(sample.summary.values())} entries {sample.summary}, {size} B JSON")
        timed_loop(lambda m: to_transaction(m, context), by_type[name], 0.2)  # type: ignore[arg-type]
    also = {
        f"{name} parse+convert": [m.text for m in by_type[name]] for name in names
    }  # what the listener's dry run costs per message (it parses once, converts once)
    for round_no in range(args.micro_rounds):
        order = names if round_no % 2 == 0 else names[::-1]
        for name in order:
            rates.setdefault(name, []).append(
                timed_loop(lambda m: to_transaction(m, context), by_type[name], args.micro_seconds)  # type: ignore[arg-type]
            )
        for name, texts in also.items():
            rates.setdefault(name, []).append(
                timed_loop(
                    lambda t: to_transaction(parse_message(t), context), texts, args.micro_seconds
                )
            )
    print(f"   {'to_transaction':24s} {'msgs/s median (min..max)':>28s} {'ms each':>8s}")
    for name, values in rates.items():
        print(f"   {name:24s} {spread(values, 0):>28s} {1000 / statistics.median(values):8.3f}")


# --------------------------------------------------------------------------------------------
# The world: a throwaway schema, two tenants (HAPI partitions), the senders
# --------------------------------------------------------------------------------------------

# Every type the run's data can hold in its partitions (conversions, the critical-result Tasks
# they may add, what the worker's flows write), referrers first: HAPI refuses to delete what is
# referred to.
CLEANUP_ORDER = (
    "Provenance", "MessageHeader", "AuditEvent", "Communication", "Flag", "DetectedIssue",
    "Task", "DocumentReference", "DiagnosticReport", "Observation", "Specimen", "RequestGroup",
    "ServiceRequest", "MedicationRequest", "MedicationStatement", "AllergyIntolerance",
    "Immunization", "Appointment", "RelatedPerson", "Coverage", "Encounter", "Condition",
    "Location", "Medication", "Patient", "PractitionerRole", "Practitioner", "Organization",
)  # fmt: skip
# What refers to a resource of the type and must go in the same transaction (referrer type, its
# search parameter): an Encounter and its diagnoses refer to each other (Encounter.diagnosis,
# Condition.encounter); a ward, its rooms and beds (Location.partOf, followed down).
TOGETHER: dict[str, tuple[str, str]] = {
    "Encounter": ("Condition", "encounter"),
    "Location": ("Location", "partof"),
}


@dataclass
class World:
    local: Settings
    sessions: async_sessionmaker[AsyncSession]
    intake: str  # tenant slug of the MLLP side (its senders; the worker converts into it)
    direct: str  # tenant slug of the direct side
    senders: list[str]  # MSH-3 of each connection's sender
    partitions: dict[str, int] = field(default_factory=dict)


async def _delete_urls(tenant: TenantFhirClient, urls: list[str]) -> bool:
    """DELETE ``urls`` in one transaction; False when HAPI refused it (or did not answer)."""
    entries = [{"request": {"method": "DELETE", "url": url}} for url in urls]
    try:
        await tenant.transaction(
            {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )
    except Exception:  # noqa: BLE001 - the caller searches again and retries smaller
        return False
    return True


async def _delete_one_by_one(tenant: TenantFhirClient, urls: list[str]) -> list[str]:
    """The last resort, in passes (a referrer goes in an earlier pass); what is left."""
    for _pass in range(6):
        refused = []
        for url in urls:
            kind, resource_id = url.split("/")
            try:
                await tenant.delete(kind, resource_id)
            except Exception:  # noqa: BLE001 - retried in the next pass
                refused.append(url)
        urls = refused
        if not urls:
            break
        await asyncio.sleep(0.3)
    return urls


def _ids(bundle: dict[str, Any], resource_type: str) -> list[str]:
    return [
        str(e["resource"]["id"])
        for e in bundle.get("entry") or ()
        if e.get("resource", {}).get("resourceType") == resource_type
    ]


async def _with_referrers(
    tenant: TenantFhirClient, resource_type: str, ids: list[str]
) -> list[str]:
    """``resource_type/id`` of ``ids`` plus, per TOGETHER, what refers to them (followed down
    when the referrer is of the same type)."""
    urls = {f"{resource_type}/{i}" for i in ids}
    relation = TOGETHER.get(resource_type)
    frontier = ids
    while relation is not None and frontier:
        kind, parameter = relation
        found: list[str] = []
        for start in range(0, len(frontier), 10):
            targets = ",".join(f"{resource_type}/{i}" for i in frontier[start : start + 10])
            query = {parameter: targets, "_count": "200", "_elements": "id"}
            found += _ids(await tenant.search(kind, query, single_page=True), kind)
        new = [i for i in dict.fromkeys(found) if f"{kind}/{i}" not in urls]
        urls |= {f"{kind}/{i}" for i in new}
        frontier = new if kind == resource_type else []
    return sorted(urls)


async def wipe_partition(tenant: TenantFhirClient, parallel: int = 3) -> tuple[int, list[str]]:
    """Delete every resource of CLEANUP_ORDER's types in the partition: a page of one type
    (with what must go with it, TOGETHER) in ``parallel`` concurrent transactions (one when
    they refer to each other). A refused or unanswered transaction: search again with a page
    half the size (a slow HAPI may have finished it meanwhile), down to 5; then one by one.
    (The number deleted, what could not be deleted.)"""
    deleted = 0
    left: list[str] = []
    for resource_type in CLEANUP_ORDER:
        together = resource_type in TOGETHER
        count = 50 if together else 150
        for _ in range(100_000):
            query = {"_count": str(count), "_elements": "id"}
            bundle = await tenant.search(resource_type, query, single_page=True)
            ids = _ids(bundle, resource_type)
            if not ids:
                break
            urls = await _with_referrers(tenant, resource_type, ids)
            parts = [urls] if together else [urls[i::parallel] for i in range(parallel)]
            done = await asyncio.gather(*(_delete_urls(tenant, p) for p in parts if p))
            if all(done):
                deleted += len(urls)
                continue
            if count > 5:
                count = max(5, count // 2)
                await asyncio.sleep(1.0)
                continue
            failed = await _delete_one_by_one(tenant, urls)
            deleted += len(urls) - len(failed)
            if failed:
                left += failed
                break
    return deleted, left


@contextlib.asynccontextmanager
async def bench_world(
    settings: Settings, fhir: FhirClient, run: str, lanes: int
) -> AsyncIterator[World]:
    schema = f"bench_hl7_{run}"
    local = settings.model_copy(
        update={"db": settings.db.model_copy(update={"app_schema": schema})}
    )
    await upgrade(local)
    engine = create_engine(local.db)
    sessions = create_sessionmaker(engine)
    world = World(local, sessions, f"bench-hl7-{run}-mllp", f"bench-hl7-{run}-direct", [])
    try:
        for slug in (world.intake, world.direct):
            async with sessions() as session, session.begin():
                tenant, _ = await create_tenant(session, fhir, slug=slug, name="Bench HL7 v2")
                world.partitions[slug] = tenant.partition_id
                if slug == world.intake:
                    for lane in range(lanes):
                        sender = await register_sender(
                            session,
                            tenant_id=tenant.id,
                            name=f"bench-{lane}",
                            sending_application=f"BENCH{lane}",
                            sending_facility=FACILITY,
                            message_types=["ADT_A01", "ORU_R01"],
                            created_by="benchmark",
                        )
                        world.senders.append(sender.sending_application)
        yield world
    finally:
        started = time.perf_counter()
        removed = 0
        gone: list[str] = []
        try:
            slugs = list(world.partitions)
            wiped = await asyncio.gather(*(wipe_partition(fhir.for_tenant(s)) for s in slugs))
            for slug, (deleted, left) in zip(slugs, wiped, strict=True):
                removed += deleted
                if left:
                    print(f"!!! {slug}: {len(left)} resources NOT deleted, e.g. {left[:3]}")
                    continue
                await delete_partition(fhir, world.partitions[slug])
                gone.append(f"{slug} ({world.partitions[slug]})")
        finally:
            await engine.dispose()
            admin = create_engine(settings.db)
            async with admin.begin() as connection:
                for name in (job_queue_schema(schema), schema):
                    await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            await admin.dispose()
            redis = Redis.from_url(settings.redis.url.get_secret_value())
            await redis.delete(events.stream_key(settings.events, schema))
            await redis.aclose()
        print(
            f"\nclean-up: {removed} HAPI resources deleted, partitions deleted: "
            f"{', '.join(gone) or 'none'}; schema {schema} (+ its job queue, event stream) dropped "
            f"({time.perf_counter() - started:.0f} s)"
        )


# --------------------------------------------------------------------------------------------
# ``ehr hl7 listen`` and ``ehr worker`` in subprocesses on the bench schema
# --------------------------------------------------------------------------------------------


class Cli:
    """An ``ehr`` command in a subprocess (its output in a temporary file)."""

    def __init__(self, local: Settings, args: argparse.Namespace, *command: str) -> None:
        env = {
            **os.environ,
            "EHR_DB__APP_SCHEMA": local.db.app_schema,
            "EHR_HL7__HEALTH_PORT": "0",
            "EHR_JOBS__HEALTH_PORT": "0",
            "EHR_JOBS__CONCURRENCY": str(args.worker_concurrency or args.concurrency),
            "EHR_FHIR_CHANGES__ENABLED": "false",
            "EHR_LOG__LEVEL": args.log_level,
        }
        self.command = [str(Path(sys.executable).with_name("ehr")), *command]
        self.path = (
            Path(tempfile.gettempdir()) / f"bench-hl7v2-{local.db.app_schema}-{command[-1]}.log"
        )
        if command[0] == "hl7":
            self.path = self.path.with_name(
                self.path.name.replace(f"-{command[-1]}.", "-listener.")
            )
        self.log = self.path.open("w+b")
        self.keep_log = bool(args.keep_logs)
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI
            self.command, env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.paused = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            os.kill(self.pid, signal.SIGCONT)
            self.paused = False

    def check(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"{shlex.join(self.command)} exited:\n{self.output()}")

    def stop(self) -> None:
        self.resume()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
        if not self.keep_log:
            self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def cli(local: Settings, args: argparse.Namespace, *command: str) -> Iterator[Cli]:
    process = Cli(local, args, *command)
    atexit.register(process.resume)  # never leave a stopped process behind
    try:
        yield process
    finally:
        process.stop()


async def wait_listening(port: int, process: Cli) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        process.check()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return
    raise SystemExit(f"the listener did not listen within {PATIENCE_SECONDS:.0f} s")


# --------------------------------------------------------------------------------------------
# The variants
# --------------------------------------------------------------------------------------------


@dataclass
class Round:
    variant: str
    count: int
    seconds: float  # first frame written / first post → last ACK / last answer
    latencies: list[float]  # ms, per message (ACK) or per transaction (answer)
    cpu: dict[str, float]  # ms per message by process, during the intake (to the last ACK)
    converted_seconds: float | None = None  # first frame written → last conversion committed
    drain_seconds: float | None = None  # worker resumed → last conversion (mllp)

    @property
    def rate(self) -> float:
        return self.count / self.seconds


class Cpu:
    """CPU ms of the processes that do the work (utime + stime from /proc)."""

    def __init__(self, listener: Cli, worker: Cli, hapi_port: int, pg_pid: int | None) -> None:
        self.fixed = {"listener": listener.pid, "worker": worker.pid, "bench": os.getpid()}
        self.hapi_port = hapi_port
        self.pg_pid = pg_pid

    def groups(self) -> dict[str, list[int]]:
        found = {name: [pid] for name, pid in self.fixed.items()}
        found["HAPI"] = sorted(listening_pids(self.hapi_port))[:1]
        found["PG"] = probes.descendants(self.pg_pid) if self.pg_pid else []
        return found

    def snapshot(self) -> dict[str, dict[int, float]]:
        return {name: probes.cpu_ms(pids) for name, pids in self.groups().items()}

    @staticmethod
    def per_message(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], count: int
    ) -> dict[str, float]:
        return {
            name: sum(ms - before.get(name, {}).get(pid, 0.0) for pid, ms in pids.items()) / count
            for name, pids in after.items()
        }


def ack_code(payload: bytes) -> str:
    for line in payload.decode("utf-8", errors="replace").split("\r"):
        if line.startswith("MSA"):
            return line.split("|")[1]
    return "?"


async def open_lanes(port: int, lanes: int) -> list[tuple[FrameReader, asyncio.StreamWriter]]:
    opened = []
    for _ in range(lanes):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened.append(
            (FrameReader(reader, max_bytes=1 << 22, idle_timeout=PATIENCE_SECONDS), writer)
        )
    return opened


async def close_lanes(opened: list[tuple[FrameReader, asyncio.StreamWriter]]) -> None:
    for _, writer in opened:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def exchange(frames: FrameReader, writer: asyncio.StreamWriter, message: str) -> float:
    """Send one frame, read its ACK (must be AA); ms from written to read."""
    data = frame_bytes(message)
    started = time.perf_counter()
    writer.write(data)
    await writer.drain()
    frame = await frames.next()
    elapsed = (time.perf_counter() - started) * 1000
    if frame is None:
        raise SystemExit("the listener closed the connection")
    code = ack_code(frame.payload)
    if code != "AA":
        raise SystemExit(f"ACK {code}: {frame.payload[:600]!r}")
    return elapsed


async def converted_by(world: World, prefix: str, count: int, worker: Cli) -> float:
    """Wait until the worker has converted the ``count`` messages of ``prefix``; the wall-clock
    time (epoch s) of the last conversion (its ``converted_at``)."""
    deadline = time.monotonic() + PATIENCE_SECONDS + count * 0.5
    query = (
        sa.select(Hl7Message.status, sa.func.count(), sa.func.max(Hl7Message.converted_at))
        .where(Hl7Message.control_id.like(f"{prefix}-%"))
        .group_by(Hl7Message.status)
    )
    while time.monotonic() < deadline:
        worker.check()
        async with world.sessions() as session:
            found = {row[0]: (int(row[1]), row[2]) for row in await session.execute(query)}
        if "dead" in found:
            async with world.sessions() as session:
                error = await session.scalar(
                    sa.select(Hl7Message.error).where(
                        Hl7Message.control_id.like(f"{prefix}-%"), Hl7Message.status == "dead"
                    )
                )
            raise SystemExit(f"{found['dead'][0]} conversions are dead letters: {error}")
        done, last = found.get("converted", (0, None))
        if done == count and last is not None:
            return float(last.timestamp())
        await asyncio.sleep(0.05)
    raise SystemExit(f"not converted within the deadline: {found}\n{worker.output()}")


async def mllp_round(
    variant: str,
    port: int,
    batch: Batch,
    world: World,
    worker: Cli,
    cpu: Cpu,
    pg: probes.Postgres | None = None,
) -> tuple[Round, dict[str, int] | None]:
    """Send the batch over its lanes (the worker paused unless ``mllp+worker``), then wait for
    the worker to convert all of it. With ``pg``: the statements of the intake (database ehr)."""
    opened = await open_lanes(port, len(batch.lanes))
    pause = variant == "mllp"
    if pause:
        worker.pause()
    if pg is not None:
        pg.reset_statements()
    before = cpu.snapshot()
    started_wall, started = time.time(), time.perf_counter()

    async def lane(index: int) -> list[float]:
        frames, writer = opened[index]
        return [await exchange(frames, writer, message) for message in batch.lanes[index]]

    try:
        per_lane = await asyncio.gather(*(lane(i) for i in range(len(batch.lanes))))
        seconds = time.perf_counter() - started
        used = Cpu.per_message(before, cpu.snapshot(), len(batch.messages))
        statements = pg.statements().get("ehr", {}) if pg is not None else None
    finally:
        resumed = time.time()
        worker.resume()
        await close_lanes(opened)
    last = await converted_by(world, batch.prefix, len(batch.messages), worker)
    result = Round(
        variant=variant,
        count=len(batch.messages),
        seconds=seconds,
        latencies=[ms for lane_ms in per_lane for ms in lane_ms],
        cpu=used,
        converted_seconds=last - started_wall,
        drain_seconds=last - resumed if pause else None,
    )
    return result, statements


async def direct_round(
    tenant: TenantFhirClient, bundles: list[list[dict[str, Any]]], cpu: Cpu
) -> Round:
    """The same messages' transactions posted straight to HAPI, one lane per connection."""
    before = cpu.snapshot()
    started = time.perf_counter()

    async def lane(index: int) -> list[float]:
        times = []
        for bundle in bundles[index]:
            begun = time.perf_counter()
            await tenant.transaction(bundle)
            times.append((time.perf_counter() - begun) * 1000)
        return times

    per_lane = await asyncio.gather(*(lane(i) for i in range(len(bundles))))
    seconds = time.perf_counter() - started
    count = sum(len(lane_bundles) for lane_bundles in bundles)
    return Round(
        variant="direct",
        count=count,
        seconds=seconds,
        latencies=[ms for lane_ms in per_lane for ms in lane_ms],
        cpu=Cpu.per_message(before, cpu.snapshot(), count),
    )


async def open_model(
    port: int, batch: Batch, rate: float, world: World, worker: Cli
) -> tuple[list[float], list[float], float, float]:
    """Messages arrive at ``rate``/s (message k at t0 + k/rate, lane k mod C); each connection
    still sends → ACK in order, so a message waits behind its lane's previous one. (latency from
    the scheduled time, latency from the frame written, the latest send lag, the time until the
    worker converted the last one after the last ACK), ms / ms / ms / s."""
    opened = await open_lanes(port, len(batch.lanes))
    messages = batch.messages
    lanes = len(batch.lanes)
    schedule = [
        [((j * lanes + i) / rate, message) for j, message in enumerate(lane_messages)]
        for i, lane_messages in enumerate(batch.lanes)
    ]
    t0 = time.perf_counter() + 0.05
    from_scheduled: list[float] = []
    from_written: list[float] = []
    lag = 0.0

    async def lane(index: int) -> None:
        nonlocal lag
        frames, writer = opened[index]
        for offset, message in schedule[index]:
            due = t0 + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = max(lag, (time.perf_counter() - due) * 1000)
            written = await exchange(frames, writer, message)
            from_written.append(written)
            from_scheduled.append((time.perf_counter() - due) * 1000)

    try:
        await asyncio.gather(*(lane(i) for i in range(len(batch.lanes))))
        finished = time.time()
    finally:
        await close_lanes(opened)
    last = await converted_by(world, batch.prefix, len(messages), worker)
    return from_scheduled, from_written, lag, max(0.0, last - finished)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

VARIANTS = ("mllp", "mllp+worker", "direct")


def durability(pg: probes.Postgres | None, wanted: str) -> str:
    if pg is None:
        return "not controlled (PostgreSQL is not the devstack's cluster)"
    how = "left as the stack runs it" if wanted == "dev" else pg.durability(wanted)
    seen = ", ".join(f"{db} {pg.setting('synchronous_commit', db)[0]}" for db in ("ehr", "hapi"))
    return f"synchronous_commit (SHOW from a new session): {seen} [{how}]"


def print_statements(statements: dict[str, int] | None, count: int) -> None:
    if not statements:
        print("   (pg_stat_statements not available: no statement counts)")
        return
    total = sum(statements.values())
    print(
        f"   PostgreSQL statements per ACKed message (database ehr, pg_stat_statements, "
        f"server-wide, BEGIN/COMMIT included): {total / count:.1f}"
    )
    for query, calls in sorted(statements.items(), key=lambda kv: -kv[1])[:12]:
        if calls / count >= 0.2:
            print(f"     {calls / count:5.2f}  {query[:110]}")


def print_rounds(rounds: dict[str, list[Round]], args: argparse.Namespace) -> dict[str, float]:
    """The summary table; returns the median rates by variant."""
    groups = ("listener", "worker", "HAPI", "PG", "bench")
    head = " ".join(f"{g:>8s}" for g in groups)
    print(
        f"\n   {'variant':12s} {'msgs/s median (min..max)':>26s} {'p50':>6s} {'p95':>6s} "
        f"{'p99':>6s}  | CPU ms per message: {head}"
    )
    medians: dict[str, float] = {}
    for variant, done in rounds.items():
        rates = [r.rate for r in done]
        medians[variant] = statistics.median(rates)
        p50s = [pct(r.latencies, 50) for r in done]
        p95s = [pct(r.latencies, 95) for r in done]
        p99s = [pct(r.latencies, 99) for r in done]
        cpu = {g: statistics.median([r.cpu.get(g, 0.0) for r in done]) for g in groups}
        print(
            f"   {variant:12s} {spread(rates):>26s} {statistics.median(p50s):6.1f} "
            f"{statistics.median(p95s):6.1f} {statistics.median(p99s):6.1f}  | "
            f"{' ' * 20}{' '.join(f'{cpu[g]:8.2f}' for g in groups)}"
        )
    del args
    return medians


def ratio_line(label: str, values: list[float], target: str | None = None) -> str:
    verdict = ""
    if target is not None:
        bound = float(target.split()[-1])
        met = statistics.median(values) >= bound if ">=" in target else False
        verdict = f"   target {target}: {'MET' if met else 'MISSED'}"
    return f"   {label:58s} {spread(values, 2)}{verdict}"


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(LogSettings(level="WARNING", json_format=False))
    print(f"machine: {machine()}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"code: {revision()}")
    if not args.skip_micro:
        parse_phase(args)
        conversion_phase(args)
    if args.micro_only:
        return
    cluster = Stack.from_settings().postgres()
    pg = probes.Postgres(cluster) if cluster is not None and cluster.running() else None
    if pg is not None:
        atexit.register(pg.restore)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    hapi_port = urllib.parse.urlsplit(settings.fhir.base_url).port or 80
    run_id = secrets.token_hex(3)
    lanes = args.concurrency
    try:
        print(f"\nPostgreSQL: {durability(pg, args.durability)}")
        async with (
            FhirClient(settings.fhir, http_backend=settings.fhir.http_backend) as fhir,
            bench_world(settings, fhir, run_id, lanes) as world,
        ):
            port = free_port()
            with (
                cli(world.local, args, "hl7", "listen", "--host", "127.0.0.1", "--port", str(port))
                as listener,
                cli(world.local, args, "worker") as worker,
            ):  # fmt: skip
                await wait_listening(port, listener)
                cpu = Cpu(listener, worker, hapi_port, cluster.pid() if cluster else None)
                direct = fhir.for_tenant(world.direct)
                generator = Generator(
                    run_id,
                    world.senders,
                    args.oru_share,
                    args.results,
                    shared_staff=args.shared_staff,
                )
                print(
                    f"schema {world.local.db.app_schema}; tenants {world.intake} (MLLP, "
                    f"{lanes} senders) and {world.direct} (direct); listener `ehr hl7 listen` "
                    f"(pid {listener.pid}), worker `ehr worker` (pid {worker.pid}, "
                    f"concurrency {args.worker_concurrency or lanes}), log level {args.log_level}; "
                    f"their logs: {listener.path}, {worker.path}"
                    f"{'' if args.keep_logs else ' (deleted at the end; --keep-logs keeps them)'}"
                )
                print(
                    f"\n1./2. throughput and ACK latency: {args.messages} messages per variant per "
                    f"round ({1 - args.oru_share:.0%} ADT^A01, {args.oru_share:.0%} ORU^R01 with "
                    f"{args.results} OBX; each a new patient, visit, order), {lanes} connections "
                    f"(one sender each) / {lanes} concurrent transactions; warm-up "
                    f"{args.warmup} per variant, then {args.rounds} rounds, order rotating"
                )
                print(
                    "   mllp        = ACKed msgs/s, store-before-ACK only (parse, route, duplicate "
                    "check,\n                 conversion dry run, ONE PostgreSQL commit of message "
                    "+ ACK + job);\n                 worker paused (SIGSTOP) meanwhile: NO "
                    "conversion inside\n   mllp+worker = the same while the worker converts "
                    "(production)\n   direct      = the same messages' to_transaction Bundles "
                    "posted to HAPI (transactions/s)\n   latency columns: ms frame written → ACK "
                    "read (direct: transaction round trip)"
                )

                async def one_round(variant: str, size: int, probe: bool = False) -> Round:
                    if variant == "direct":
                        return await direct_round(direct, pending.pop(0), cpu)
                    batch = generator.batch(size)
                    if variant == "mllp":
                        pending.append(bundles_of(batch, world.direct))
                    result, statements = await mllp_round(
                        variant, port, batch, world, worker, cpu, pg if probe else None
                    )
                    if probe:
                        probed.append((statements, result.count))
                    return result

                pending: list[list[list[dict[str, Any]]]] = []
                probed: list[tuple[dict[str, int] | None, int]] = []
                for variant in VARIANTS:
                    await one_round(variant, args.warmup)
                # One full batch ahead: a direct round posts the Bundles of the oldest mllp batch
                # whose Bundles are not posted yet (this one, or an earlier round's).
                await one_round("mllp", args.messages)
                rounds: dict[str, list[Round]] = {v: [] for v in VARIANTS}
                for number in range(args.rounds):
                    shift = number % len(VARIANTS)
                    order = VARIANTS[shift:] + VARIANTS[:shift]
                    line = []
                    for variant in order:
                        done = await one_round(
                            variant,
                            args.messages,
                            probe=number == 0 and variant == "mllp" and pg is not None,
                        )
                        rounds[variant].append(done)
                        extra = (
                            f", converted e2e {done.count / done.converted_seconds:.0f}/s"
                            if done.converted_seconds
                            else ""
                        )
                        line.append(
                            f"{variant} {done.rate:.0f}/s p95 {pct(done.latencies, 95):.0f} ms"
                            f"{extra}"
                        )
                    print(f"   round {number + 1}: " + "; ".join(line))
                medians = print_rounds(rounds, args)
                ratios = [
                    a.rate / d.rate for a, d in zip(rounds["mllp"], rounds["direct"], strict=True)
                ]
                live = [
                    a.rate / d.rate
                    for a, d in zip(rounds["mllp+worker"], rounds["direct"], strict=True)
                ]
                e2e = [
                    a.count / a.converted_seconds / d.rate
                    for a, d in zip(rounds["mllp"], rounds["direct"], strict=True)
                    if a.converted_seconds
                ]
                e2e_live = [
                    a.count / a.converted_seconds / d.rate
                    for a, d in zip(rounds["mllp+worker"], rounds["direct"], strict=True)
                    if a.converted_seconds
                ]
                drain = [a.count / a.drain_seconds for a in rounds["mllp"] if a.drain_seconds]
                print("\n   ratios (median of the per-round ratios, min..max)")
                print(
                    ratio_line("mllp ACKed msgs/s ÷ direct transactions/s (P7)", ratios, ">= 0.8")
                )
                print(ratio_line("mllp+worker ACKed msgs/s ÷ direct", live))
                print(ratio_line("end to end, mllp round: converted msgs/s ÷ direct", e2e))
                print(
                    ratio_line("end to end, mllp+worker round: converted msgs/s ÷ direct", e2e_live)
                )
                alone = statistics.median(drain) / medians["direct"]
                print(
                    f"   the worker alone (mllp rounds, resumed → last converted): "
                    f"{spread(drain)} converted msgs/s = {alone:.2f} x direct"
                )
                p95 = [pct(r.latencies, 95) for r in rounds["mllp"]]
                p95_live = [pct(r.latencies, 95) for r in rounds["mllp+worker"]]
                verdict = "MET" if statistics.median(p95) <= 100 else "MISSED"
                print(
                    f"   ACK p95, mllp: {spread(p95)} ms; mllp+worker: {spread(p95_live)} ms"
                    f"   target <= 100 ms (mllp): {verdict}"
                )
                all_acks = [ms for r in rounds["mllp"] for ms in r.latencies]
                all_live = [ms for r in rounds["mllp+worker"] for ms in r.latencies]
                print(
                    f"   ACK latency over all rounds (ms): mllp p50/p95/p99 "
                    f"{pct(all_acks, 50):.1f}/{pct(all_acks, 95):.1f}/{pct(all_acks, 99):.1f}, "
                    f"max {max(all_acks):.1f}; mllp+worker "
                    f"{pct(all_live, 50):.1f}/{pct(all_live, 95):.1f}/{pct(all_live, 99):.1f}, "
                    f"max {max(all_live):.1f}"
                )
                for statements, count in probed:
                    print_statements(statements, count)

                if args.rate_rounds:
                    rate = args.rate or round(0.5 * medians["mllp+worker"])
                    size = max(lanes, int(rate * args.rate_seconds))
                    print(
                        f"\n2b. ACK latency, open model: {rate:.0f} msgs/s arriving (message k at "
                        f"t0 + k/rate over {lanes} connections, each still send → ACK in order), "
                        f"{size} messages per round, worker converting; latency from the "
                        "scheduled time (queueing included) and from the frame written"
                    )
                    for number in range(args.rate_rounds):
                        batch = generator.batch(size)
                        scheduled, written, lag, backlog = await open_model(
                            port, batch, rate, world, worker
                        )
                        print(
                            f"   round {number + 1}: from scheduled p50/p95/p99 "
                            f"{pct(scheduled, 50):.1f}/{pct(scheduled, 95):.1f}/"
                            f"{pct(scheduled, 99):.1f} ms; from written "
                            f"{pct(written, 50):.1f}/{pct(written, 95):.1f}/{pct(written, 99):.1f}"
                            f" ms; latest send {lag:.0f} ms late; conversions done {backlog:.1f} s"
                            " after the last ACK"
                        )
    finally:
        if pg is not None:
            pg.restore()
            print(
                f"\nPostgreSQL restored: synchronous_commit {pg.setting('synchronous_commit')[0]}"
            )
    print(f"\ncommand: {shlex.join([sys.executable, *sys.argv])}")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=60, help="per variant per round")
    parser.add_argument("--concurrency", type=int, default=4, help="connections / senders")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=16, help="messages per variant before")
    parser.add_argument("--oru-share", type=float, default=0.5, help="share of ORU^R01")
    parser.add_argument("--results", type=int, default=8, help="OBX per ORU^R01")
    parser.add_argument("--worker-concurrency", type=int, default=0, help="0: --concurrency")
    parser.add_argument(
        "--durability", choices=("on", "local", "dev"), default="on",
        help="synchronous_commit for the run (dev: leave the stack's)",
    )  # fmt: skip
    parser.add_argument("--log-level", default="WARNING", help="of the listener and worker")
    parser.add_argument("--rate", type=float, default=0.0, help="open model msgs/s (0: half mllp)")
    parser.add_argument("--rate-seconds", type=float, default=4.0)
    parser.add_argument("--rate-rounds", type=int, default=2, help="0: skip the open model")
    parser.add_argument("--micro-rounds", type=int, default=5, help="parse/convert rounds")
    parser.add_argument("--micro-seconds", type=float, default=0.5, help="per variant per round")
    parser.add_argument(
        "--shared-staff", action="store_true",
        help="every sender names the same physicians and wards (conversions then race on "
        "HAPI's conditional creates: 409 -> dead letters)",
    )  # fmt: skip
    parser.add_argument("--keep-logs", action="store_true", help="keep the subprocesses' logs")
    parser.add_argument("--no-hl7apy", action="store_true", help="do not pip-install hl7apy")
    parser.add_argument("--skip-micro", action="store_true", help="skip parts 3 and 4")
    parser.add_argument("--micro-only", action="store_true", help="only parts 3 and 4")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= 64 or not 1 <= args.rounds <= 15:
        parser.error("bounds: 1 <= concurrency <= 64, 1 <= rounds <= 15")
    if args.messages < args.concurrency or args.warmup < args.concurrency:
        parser.error("--messages and --warmup must be at least --concurrency")
    if not 0 <= args.oru_share <= 1 or not 1 <= args.results <= 200:
        parser.error("bounds: 0 <= oru-share <= 1, 1 <= results <= 200")
    return args


def main() -> None:
    asyncio.run(run(_parse()))


if __name__ == "__main__":
    main()
