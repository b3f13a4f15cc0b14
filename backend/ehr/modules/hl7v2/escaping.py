"""ER7 escape sequences read back (HL7 v2.5 2.7): the unescape function of a message's
delimiters, which the parser applies to every field, component and subcomponent.

    unescape = unescaper("|", r"^~\\&")
    unescape(r"Smith\\S\\Jones")            # "Smith^Jones"

Escaping outbound text is :func:`ehr.modules.hl7v2.er7.escape`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

__all__ = ["Unescape", "unescaper"]

Unescape = Callable[[str], str]

# Formatting commands of FT (HL7 v2.5 2.7.6) as plain text: line breaks stay ``\r`` (the
# mapping turns them into newlines), fill/indent commands carry no text.
_FORMATTING: Final[dict[str, str]] = {
    ".br": "\r",
    ".sp": "\r",
    ".ce": "\r",
    ".fi": "",
    ".nf": "",
    ".in": "",
    ".ti": "",
    ".sk": " ",
}
_HEX: Final = re.compile(r"^X((?:[0-9A-Fa-f]{2})+)$")


def unescaper(separator: str, encoding: str) -> Unescape:
    """The unescape function of a message's delimiters (HL7 v2.5 2.7).

    Not python-hl7's ``unescape``: that one writes ``_`` for highlighting (``\\H\\``/``\\N\\``),
    drops the text of anything it does not know (a Windows path, ``w\\o``), decodes ``\\Xhh\\``
    bytes as Latin-1 only, and logs the whole field — PHI — when it meets a sequence it cannot
    read. Here highlighting is dropped, ``\\Xhh..\\`` is UTF-8 (else Latin-1), character-set
    switches (``\\C..\\``, ``\\M..\\``) are dropped, and anything else (an unknown or unclosed
    sequence) is kept as it was sent. Nothing is logged."""
    component = encoding[0]
    repetition = encoding[1]
    escape = encoding[2] if len(encoding) > 2 else ""
    subcomponent = encoding[3] if len(encoding) > 3 else ""
    truncation = encoding[4] if len(encoding) > 4 else ""
    delimiters = {
        "F": separator,
        "S": component,
        "R": repetition,
        "E": escape,
        "T": subcomponent,
        "P": truncation,
        "H": "",
        "N": "",
    }

    def sequence(body: str) -> str | None:
        if body in delimiters and (delimiters[body] or body in {"H", "N"}):
            return delimiters[body]
        command = body[:3]
        if command in _FORMATTING and re.fullmatch(r"[+-]?\d*", body[3:]):
            count = int(body[3:]) if body[3:].lstrip("+-").isdigit() else 1
            text = _FORMATTING[command]
            return text * max(count, 1) if text and command in {".sp", ".sk"} else text
        hexadecimal = _HEX.match(body)
        if hexadecimal:
            raw = bytes.fromhex(hexadecimal.group(1))
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("latin-1")
        if body[:1] in {"C", "M"} and re.fullmatch(r"[CM](?:[0-9A-Fa-f]{4}|[0-9A-Fa-f]{6})", body):
            return ""
        return None

    def unescape(value: str) -> str:
        if not escape or escape not in value:
            return value
        out: list[str] = []
        position = 0
        while True:
            opening = value.find(escape, position)
            if opening < 0:
                out.append(value[position:])
                break
            closing = value.find(escape, opening + 1)
            if closing < 0:
                out.append(value[position:])
                break
            out.append(value[position:opening])
            replaced = sequence(value[opening + 1 : closing])
            if replaced is None:  # not an escape sequence: the sender's text, as it was
                out.append(value[opening:closing])
                position = closing
            else:
                out.append(replaced)
                position = closing + 1
        return "".join(out)

    return unescape
