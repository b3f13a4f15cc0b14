"""The authorization server's pages: login, second factor, consent (with the patient picker) and
errors — small, plain, accessible HTML served by the backend (no script, no framework).

Every value that reaches a page is escaped (:func:`html.escape`); forms post back to
``/oauth2/authorize/*`` with the request handle and the CSRF token. Pages are never cached or
framed (``Cache-Control: no-store``, CSP ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from fastapi.responses import HTMLResponse

__all__ = [
    "PatientChoice",
    "ScopeChoice",
    "consent_page",
    "error_page",
    "login_page",
    "mfa_page",
]

_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}
_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1a1a1a}label{display:block;margin:.75rem 0 .25rem}"
    "input[type=text],input[type=password],input[type=search]{width:100%;padding:.5rem;"
    "font-size:1rem}button{font-size:1rem;padding:.5rem 1.25rem;margin:1rem .5rem 0 0}"
    "fieldset{border:1px solid #ccc;margin:1rem 0}.error{color:#a00;font-weight:600}"
    "li{list-style:none}"
)


@dataclass(frozen=True, slots=True)
class ScopeChoice:
    scope: str
    description: str


@dataclass(frozen=True, slots=True)
class PatientChoice:
    id: str
    label: str


def _page(title: str, body: str, *, status_code: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status_code, headers=_HEADERS)


def _hidden(fields: Iterable[tuple[str, str]]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields
    )


def _message(error: str | None) -> str:
    return f'<p class="error" role="alert">{escape(error)}</p>' if error else ""


def error_page(description: str, *, status_code: int = 400) -> HTMLResponse:
    """A refusal that cannot go back to the app (unknown client or redirect URI, expired)."""
    body = (
        "<h1>This sign-in request cannot continue</h1>"
        f'<p role="alert">{escape(description)}</p>'
        "<p>Return to the application and start again.</p>"
    )
    return _page("Sign-in error", body, status_code=status_code)


def login_page(
    *, app_name: str, request_id: str, csrf: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    body = (
        f"<h1>Sign in</h1><p><strong>{escape(app_name)}</strong> asks to connect to your "
        "health record account.</p>"
        f"{_message(error)}"
        '<form method="post" action="/oauth2/authorize/login">'
        f"{_hidden((('request', request_id), ('csrf', csrf)))}"
        '<label for="username">Username</label>'
        '<input type="text" id="username" name="username" autocomplete="username" required>'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
    )
    return _page("Sign in", body, status_code=status_code)


def mfa_page(
    *, app_name: str, request_id: str, csrf: str, mfa_token: str, error: str | None = None
) -> HTMLResponse:
    body = (
        "<h1>Two-step verification</h1>"
        f"<p>Enter the code from your authenticator app to continue to "
        f"<strong>{escape(app_name)}</strong>, or one of your recovery codes.</p>"
        f"{_message(error)}"
        '<form method="post" action="/oauth2/authorize/mfa">'
        f"{_hidden((('request', request_id), ('csrf', csrf), ('mfa_token', mfa_token)))}"
        '<label for="code">Authentication code</label>'
        '<input type="text" id="code" name="code" inputmode="numeric" '
        'autocomplete="one-time-code">'
        '<label for="recovery_code">Or a recovery code</label>'
        '<input type="text" id="recovery_code" name="recovery_code" autocomplete="off">'
        '<button type="submit">Verify</button></form>'
    )
    return _page("Two-step verification", body)


def _patient_picker(
    request_id: str, query: str, patients: Sequence[PatientChoice], chosen: str | None
) -> tuple[str, str]:
    """The search form (its own GET form) and the radio list inside the consent form."""
    search = (
        '<form method="get" action="/oauth2/authorize/consent" role="search">'
        f"{_hidden((('request', request_id),))}"
        '<label for="q">Find the patient (name or identifier)</label>'
        f'<input type="search" id="q" name="q" value="{escape(query)}">'
        '<button type="submit">Search</button></form>'
    )
    if not patients:
        hint = "No patient matches." if query else "Search for the patient this app is for."
        return search, f"<p>{escape(hint)}</p>"
    items = "".join(
        f'<li><input type="radio" id="patient-{i}" name="patient" value="{escape(p.id)}"'
        f"{' checked' if p.id == chosen or (chosen is None and i == 0) else ''} required>"
        f'<label for="patient-{i}" style="display:inline">{escape(p.label)}</label></li>'
        for i, p in enumerate(patients)
    )
    return search, f"<fieldset><legend>Patient</legend><ul>{items}</ul></fieldset>"


def consent_page(
    *,
    app_name: str,
    request_id: str,
    csrf: str,
    scopes: Sequence[ScopeChoice],
    unavailable: Sequence[str],
    patient_label: str | None,
    picker: bool,
    query: str = "",
    patients: Sequence[PatientChoice] = (),
    error: str | None = None,
) -> HTMLResponse:
    """What the app asks for; the user may untick scopes, picks the patient (standalone
    ``launch/patient``), and allows or denies."""
    search, choices = _patient_picker(request_id, query, patients, None) if picker else ("", "")
    context = f"<p>Patient: <strong>{escape(patient_label)}</strong></p>" if patient_label else ""
    boxes = "".join(
        f'<li><input type="checkbox" id="scope-{i}" name="scope" value="{escape(c.scope)}" '
        f'checked><label for="scope-{i}" style="display:inline">{escape(c.description)} '
        f"<code>{escape(c.scope)}</code></label></li>"
        for i, c in enumerate(scopes)
    )
    missing = (
        "<p>Not available to you, so not granted: "
        + ", ".join(f"<code>{escape(s)}</code>" for s in unavailable)
        + "</p>"
        if unavailable
        else ""
    )
    body = (
        f"<h1>Allow {escape(app_name)}?</h1>"
        f"{_message(error)}{context}{search}"
        '<form method="post" action="/oauth2/authorize/consent">'
        f"{_hidden((('request', request_id), ('csrf', csrf)))}"
        f"{choices}"
        f"<fieldset><legend>{escape(app_name)} will be able to</legend><ul>{boxes}</ul>"
        "</fieldset>"
        f"{missing}"
        '<button type="submit" name="decision" value="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny">Deny</button></form>'
    )
    return _page(f"Allow {app_name}?", body)
