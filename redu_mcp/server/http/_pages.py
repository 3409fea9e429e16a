"""The confirmation page a person uses under ``--confirm human``: what would be destroyed, and a form.

``ConfirmationPages`` answers ``<prefix><token>`` (``/mcp/confirm/<token>`` beside the MCP endpoint,
``/confirm/<token>`` on the loopback listener) and hands every other path to the app it wraps. A
page is plain HTML: no script, no external resource. ``GET`` shows the instance (kind, name, id),
the statement of a change, when the page expires, and a form: the instance's name to type and a
button. ``POST`` approves, once, when every check passes:

* the page exists and has not expired (an unknown and an expired token get the same 404);
* it is a same-origin form post: ``Origin`` (when sent) is this page's own origin, and a browser's
  ``Sec-Fetch-Site`` (when sent) is ``same-origin``; the body is a small urlencoded form;
* its ``csrf`` field is the page's CSRF token (only its ``GET`` shows it), compared in constant time;
* the typed name is the instance's name.

A refused POST approves nothing and says why. No response is cached or framed, and the page's
address goes in a ``Referer`` to itself only (``same-origin``); the content security policy allows no
script and posts only to the page itself. The words are for a person; nothing here is read by a model.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import html
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, Response

from redu_mcp.server.approvals import Approval, Approvals, ApprovalsUnavailable, State

#: A form is the CSRF token and a name (at most 63 characters): anything much bigger is not one.
MAX_FORM_BYTES: Final = 2048

_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "dt{font-weight:bold}dd{margin:0 0 .5rem 0}pre{background:#f4f4f4;padding:.75rem;overflow:auto;"
    "white-space:pre-wrap}.warn{color:#a00;font-weight:bold}input[name=name]{font-size:1.1rem;padding:.3rem}"
    "button{font-size:1.1rem;padding:.4rem 1rem;margin-top:.5rem}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HEADERS: Final = {
    "content-security-policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    # Not no-referrer: under it a browser posts the form with "Origin: null", which no origin check accepts.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


def _page(title: str, body: str, status: int = 200) -> Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _expiry(approval: Approval) -> str:
    when = datetime.datetime.fromtimestamp(approval.expires_at, datetime.UTC)
    return when.strftime("%H:%M:%S UTC")


def _what(approval: Approval) -> str:
    subject = approval.subject
    e = html.escape
    details = (
        f"<dl><dt>Kind</dt><dd>{e(subject.kind)}</dd><dt>Name</dt><dd>{e(subject.name)}</dd>"
        f"<dt>Id</dt><dd>{subject.instance_id}</dd></dl>"
    )
    if subject.action == "delete":
        return (
            f"<p>An AI agent asks to <strong>permanently delete</strong> this instance and all its data:</p>{details}"
        )
    # The statement itself, else the question that names the change (a Redis flush).
    shown = f"<pre>{e(subject.statement)}</pre>" if subject.statement else f"<p>{e(subject.question)}</p>"
    return (
        "<p>An AI agent asks to run a change that <strong>destroys data</strong> on this instance (what it removes "
        f"cannot be brought back):</p>{details}{shown}"
    )


def _form(approval: Approval, csrf: str, problem: str | None = None) -> str:
    subject = approval.subject
    e = html.escape
    verb = "Delete" if subject.action == "delete" else "Run it on"
    said = f'<p class="warn">{e(problem)}</p>' if problem else ""
    return (
        f'{said}<form method="post"><input type="hidden" name="csrf" value="{e(csrf)}">'
        f"<p><label>To approve, type the name of the instance (<strong>{e(subject.name)}</strong>):<br>"
        '<input name="name" autocomplete="off" autocapitalize="off" spellcheck="false" required maxlength="100">'
        f'</label></p><button type="submit">{e(verb)} {e(subject.name)}</button></form>'
        f"<p>This cannot be undone. If you did not ask for this, close this page: nothing happens, and the page "
        f"expires at {_expiry(approval)}. It works once.</p>"
    )


def _title(approval: Approval) -> str:
    subject = approval.subject
    doing = "delete" if subject.action == "delete" else "change the data of"
    return f"Approve: {doing} {subject.kind} '{subject.name}'"


NOT_FOUND: Final = (
    "No such confirmation page",
    "<h1>No such confirmation page</h1><p>This page does not exist or has expired (a page works for 5 minutes). "
    "Nothing was approved. If you want this done, ask the agent again: your client will open a new page.</p>",
)
USED: Final = (
    "Confirmation page already used",
    "<h1>This page was already used</h1><p>A confirmation page works once; this one was approved, or closed by "
    "your client. Nothing more happens from here.</p>",
)
APPROVED: Final = (
    "Approved",
    "<h1>Approved</h1><p>Go back to your MCP client: the call that asked for this goes ahead now, if it is still "
    "waiting, and its result says what was done. This page cannot be used again.</p>",
)
UNAVAILABLE: Final = (
    "Try again",
    "<h1>Not now</h1><p>The server cannot reach the shared state it keeps confirmation pages in. Nothing was "
    "approved. Reload this page in a moment.</p>",
)
FORGED: Final = (
    "Not approved",
    "<h1>Not approved</h1><p>This request did not come from this page's own form (or the form was changed). "
    "Nothing was approved. Open the page again and use its form.</p>",
)


class ConfirmationPages:
    """ASGI app: the confirmation pages under ``prefix``; anything else goes to ``app`` (404 without one)."""

    def __init__(self, approvals: Approvals, prefix: str, app: Any = None) -> None:
        self.approvals = approvals
        self.prefix = prefix
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            if self.app is not None:
                await self.app(scope, receive, send)
            else:
                await _page(*NOT_FOUND, status=404)(scope, receive, send)
            return
        token = scope["path"][len(self.prefix) :]
        try:
            response = await self._answer(scope, receive, token)
        except ApprovalsUnavailable:
            response = _page(*UNAVAILABLE, status=503)
        await response(scope, receive, send)

    async def _answer(self, scope: dict[str, Any], receive: Any, token: str) -> Response:
        method = scope["method"]
        if method not in ("GET", "HEAD", "POST"):
            response = _page("Method not allowed", "<h1>Method not allowed</h1>", status=405)
            response.headers["allow"] = "GET, POST"
            return response
        found = await self.approvals.find(token)
        if method != "POST":
            return self._show(token, found)
        headers = Headers(scope=scope)
        form = await _read_form(headers, receive)
        if form is None or not _same_origin(scope, headers):
            return _page(*FORGED, status=403)
        expected = self.approvals.csrf_token(token)
        if not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
            return _page(*FORGED, status=403)
        if found is None:
            return _page(*NOT_FOUND, status=404)
        approval, state = found
        if form.get("name", "").strip() != approval.subject.name:
            if state != "pending":
                return _page(*USED, status=409)
            problem = "That is not the instance's name: nothing was approved. Type it exactly as shown."
            return _page(_title(approval), _body(approval, _form(approval, expected, problem)), status=422)
        if not await self.approvals.approve(token):  # the first post wins, once
            return _page(*USED, status=409)
        return _page(*APPROVED)

    def _show(self, token: str, found: tuple[Approval, State] | None) -> Response:
        if found is None:
            return _page(*NOT_FOUND, status=404)
        approval, state = found
        if state != "pending":
            return _page(*USED, status=410)
        return _page(_title(approval), _body(approval, _form(approval, self.approvals.csrf_token(token))))


def _body(approval: Approval, form: str) -> str:
    return f"<h1>{html.escape(_title(approval))}</h1>{_what(approval)}{form}"


async def _read_form(headers: Headers, receive: Any) -> dict[str, str] | None:
    """The posted fields (the last of each name), or None when it is not a small urlencoded form."""
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=False, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[-1] for name, values in fields.items()}


def _same_origin(scope: dict[str, Any], headers: Headers) -> bool:
    """Did a browser post this from the page itself? (A request without these headers is no browser's
    cross-site post: it still needs the CSRF token, which only the page's own GET shows.)"""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "")
    parts = urlsplit(origin)
    return parts.netloc == host and parts.scheme in ("http", "https") and not parts.path
