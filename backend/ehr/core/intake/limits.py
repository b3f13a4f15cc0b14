"""The limits every door applies to what it is sent, and the checks on JSON documents.

One discipline for every route (business API, ``/fhir``, ``/cds-services``): a request body is
parsed by :func:`parse_json` before any work starts, which refuses with 400 (in the door's error
format, see :mod:`ehr.core.error_handlers`):

* bytes that are not UTF-8 (RFC 8259 §8.1), or not one JSON text;
* nesting deeper than ``max_depth`` (objects and arrays; ``json`` itself would raise
  RecursionError near the interpreter's recursion limit, and every later recursive walk with it);
* numbers that are not finite: ``NaN``/``Infinity`` (not JSON at all) and literals such as
  ``1e999`` that overflow to infinity;
* strings (keys included) that are not sequences of Unicode scalar values (a lone surrogate
  written as ``\\ud800``) or that contain NUL (``\\u0000``): neither can be stored in PostgreSQL
  text, written to the audit trail or sent on to HAPI.

Lengths of lists and strings are capped per schema (``Field(max_length=...)``) where the shape is
known; these checks are the floor beneath every schema. The walk is iterative and linear in the
size of the document.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, Final

from ehr.core.errors import MalformedBody

__all__ = [
    "DEFAULT_MAX_JSON_DEPTH",
    "OFFLOAD_JSON_BYTES",
    "check_text",
    "clean_text",
    "is_clean_text",
    "json_pointer",
    "parse_json",
]

# Deep enough for any FHIR resource in a transaction Bundle inside a CDS prefetch; far below the
# interpreter's recursion limit (1000), so nothing downstream can hit it.
DEFAULT_MAX_JSON_DEPTH: Final = 64
# Bodies larger than this are parsed in a worker thread so the event loop keeps answering.
OFFLOAD_JSON_BYTES: Final = 256 * 1024


# NUL and surrogate code points (a str holds a surrogate only when it was sent unpaired).
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


class _NonFiniteNumberError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumberError(name)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NonFiniteNumberError(literal)
    return value


_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def is_clean_text(value: str) -> bool:
    """Whether ``value`` holds only Unicode scalar values and no NUL."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(value: str) -> tuple[str, bool]:
    """``value`` with NUL and lone surrogates replaced by U+FFFD, and whether anything was."""
    if is_clean_text(value):
        return value, False
    return _UNSTORABLE.sub("\ufffd", value), True


def check_text(value: str, *, where: str, pointer: str | None = None) -> None:
    """Raise :class:`MalformedBody` when ``value`` is not clean text (see :func:`is_clean_text`).

    ``where`` names the value in the message; ``pointer`` (RFC 6901) is reported as ``pointer``.
    The value itself is never echoed.
    """
    extra = {"pointer": pointer} if pointer is not None else None
    if "\x00" in value:
        raise MalformedBody(f"{where} contains a NUL character", extra=extra)
    if not is_clean_text(value):
        raise MalformedBody(f"{where} is not valid Unicode (a lone surrogate)", extra=extra)


def json_pointer(path: tuple[str | int, ...]) -> str:
    """RFC 6901 pointer of ``path`` (``/context/draftOrders/entry/3``); ``""`` for the root."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _children(value: dict[str, Any] | list[Any]) -> Iterator[tuple[str | int, Any]]:
    if isinstance(value, dict):
        return iter(value.items())
    return enumerate(value)


# NUL and surrogates can reach a parsed string only through \u escapes (a raw NUL byte is not
# JSON, raw surrogates are not UTF-8): without such an escape, no string needs checking.
_SUSPECT_ESCAPE: Final = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _check_tree(document: Any, max_depth: int, *, check_strings: bool = True) -> None:
    if isinstance(document, str):
        check_text(document, where="The document", pointer="")
        return
    if not isinstance(document, dict | list):
        return
    stack: list[tuple[dict[str, Any] | list[Any], int, tuple[str | int, ...]]] = [(document, 1, ())]
    while stack:
        container, depth, path = stack.pop()
        if depth > max_depth:
            raise MalformedBody(
                f"The JSON document nests deeper than {max_depth} levels",
                extra={"pointer": json_pointer(path), "max_depth": max_depth},
            )
        is_object = check_strings and isinstance(container, dict)
        for key, item in _children(container):
            if is_object and isinstance(key, str) and not is_clean_text(key):
                where = json_pointer(path)
                check_text(key, where=f"A member name in {where or 'the document'}", pointer=where)
            if isinstance(item, str):
                if check_strings and not is_clean_text(item):
                    where = json_pointer((*path, key))
                    check_text(item, where=f"The string at {where}", pointer=where)
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1, (*path, key)))


def parse_json(body: bytes | str, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """The JSON document in ``body``, or :class:`MalformedBody` (400) saying what is wrong."""
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBody("The request body is not UTF-8") from None
    else:
        text = body
    try:
        document = _DECODER.decode(text)
    except RecursionError:
        raise MalformedBody(
            f"The JSON document nests deeper than {max_depth} levels",
            extra={"max_depth": max_depth},
        ) from None
    except _NonFiniteNumberError:
        raise MalformedBody("The JSON document holds a number that is not finite") from None
    except ValueError as exc:
        position = getattr(exc, "pos", None)
        extra = {"position": position} if isinstance(position, int) else None
        raise MalformedBody("The request body is not valid JSON", extra=extra) from None
    _check_tree(document, max_depth, check_strings=_SUSPECT_ESCAPE.search(text) is not None)
    return document
