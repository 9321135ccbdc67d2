"""The webhook channel: JSON POSTs signed the Standard Webhooks way.

    webhook-id:        the notification's id (the same on every retry)
    webhook-timestamp: Unix seconds
    webhook-signature: "v1," + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))

A secret written "whsec_<base64>" is decoded, as the standard has it; any other
secret is used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urljoin

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from ..config import NotifierConfig, expand_env, ntfy_endpoint
from ..fetch import cannot_connect, error_reason, is_timeout, redacted, retry_after_seconds
from ..proxy import ProxyRoutes
from .base import Message, Outcome, OutcomeKind
from .render import chat_text, matrix_message, ntfy_message, teams_card, telegram_message

USER_AGENT = "harvester-webhook/0.1"


class _Trusting(HTTPAdapter):
    """HTTPS that trusts what feeds and email trust — the system's CAs, or SSL_CERT_FILE /
    SSL_CERT_DIR (an organisation's CA, a TLS-inspecting proxy's) — as well as the certifi
    copy requests alone would trust: one variable makes a private CA good everywhere."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("ssl_context", ssl.create_default_context())
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs.setdefault("ssl_context", ssl.create_default_context())
        return super().proxy_manager_for(proxy, **kwargs)


def secret_bytes(secret: str) -> bytes:
    """The signing key: a `whsec_…` secret is base64 after its prefix (Standard Webhooks).
    ValueError for one that is not, or for no key at all: an HMAC with an empty key is
    a signature anyone can make."""
    key = secret.encode()
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_"):], validate=True)
        except binascii.Error as e:
            raise ValueError(f"a whsec_ secret is base64 after its prefix ({e})") from None
    if not key.strip():
        raise ValueError("it is empty")
    return key


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def _item(m: Message) -> dict[str, Any]:
    keys = ("id", "title", "category", "url", "published", "summary", "first_seen")
    return {k: m.item.get(k) for k in keys}


def _changes(m: Message) -> list[dict[str, Any]]:
    """What an item.changed's edit changed: each field's old and new value, its line diff
    and its word hunks (each a list of [op, words], op "=", "-" or "+"; none for a
    rewrite) — the content's only its diffs, as text: the whole article twice is too much."""
    out = []
    for ch in m.changes:
        values = {} if ch.field == "content" else {"before": ch.before or None,
                                                   "after": ch.after or None}
        out.append({"field": ch.field, **values, "diff": list(ch.diff),
                    "words": [[list(segment) for segment in hunk] for hunk in ch.words]})
    return out


def payload(messages: Sequence[Message], digest: bool, timestamp: str) -> tuple[str, dict]:
    """(webhook-id, body) for one message, or for a digest of several."""
    if not digest and len(messages) == 1:
        m = messages[0]
        data: dict[str, Any] = {"source": m.source}
        if m.is_item:
            data.update(rules=list(m.rules), item=_item(m))
            if m.event == "item.changed":
                data["changes"] = _changes(m)
        else:
            data.update(m.data)
        return m.id, {"type": m.event, "timestamp": timestamp, "data": data}
    joined = "\x1f".join(sorted(m.id for m in messages)).encode()
    digest_id = "digest_" + hashlib.sha256(joined).hexdigest()[:24]
    return digest_id, {"type": "digest", "timestamp": timestamp, "data": {"notifications": [
        {"id": m.id, "type": m.event, "source": m.source, "rules": list(m.rules),
         "item": _item(m), **({"changes": _changes(m)} if m.event == "item.changed" else {})}
        for m in messages]}}


# Of a receiver's answer, what is read: enough for any error it explains itself with (the
# first 200 characters are kept) and for a JSON retry_after; the rest is never waited for.
ANSWER_CAP = 64 * 1024


def _answer(resp: requests.Response, deadline: float) -> bytes:
    """The start of the answer's body: up to ANSWER_CAP bytes, read until `deadline` at
    the latest. A receiver that streams without end (a URL that is not a webhook), or
    drips, must not hold the delivery pass, whose every other message waits behind it."""
    chunks, size = [], 0
    try:
        for chunk in resp.iter_content(8192):
            chunks.append(chunk)
            size += len(chunk)
            if size >= ANSWER_CAP or time.monotonic() > deadline:
                break
    except requests.RequestException:
        pass  # the status is the answer; a broken body only shortens what is shown of it
    finally:
        resp.close()
    return b"".join(chunks)[:ANSWER_CAP]


def _retry_after(resp: requests.Response, body: bytes) -> float | None:
    """How long a busy receiver asks to be left alone: its Retry-After, else what its JSON
    answer says — Telegram's {"parameters": {"retry_after": 35}}, Matrix's
    {"retry_after_ms": 2000}."""
    header = retry_after_seconds(resp.headers.get("Retry-After"))
    if header is not None:
        return header
    try:
        answer = json.loads(body)
        seconds = (answer["retry_after_ms"] / 1000 if "retry_after_ms" in answer  # Matrix
                   else answer["parameters"]["retry_after"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(seconds, (int, float)):
        return None
    return retry_after_seconds(str(math.ceil(seconds)))


# Teams' connectors answer 200 to what they did not post ("Connectors do not throw 429s":
# Microsoft's docs), the failure in the body: "Webhook message delivery failed with error:
# Microsoft Teams endpoint returned HTTP error 429 with ContextId …"
_TEAMS_REFUSAL = re.compile(r"Microsoft Teams endpoint returned HTTP error (\d{3})")


class WebhookChannel:
    def __init__(self, cfg: NotifierConfig, timeout: float = 30.0,
                 proxies: ProxyRoutes | None = None):
        self.cfg = cfg
        self.timeout = float(cfg.option("timeout", timeout))
        self.session = requests.Session()
        self.session.trust_env = False  # the proxy comes from `proxies`, worked out once
        self.session.mount("https://", _Trusting())
        self.proxies = proxies or ProxyRoutes()

    def send(self, messages: Sequence[Message], *, digest: bool) -> Outcome:
        secret_env = self.cfg.option("secret_env")
        if secret_env and secret_env not in os.environ:
            return Outcome(OutcomeKind.RETRY, f"environment variable {secret_env} is not set")
        try:
            key = secret_bytes(os.environ[secret_env]) if secret_env else None
        except ValueError as e:  # kept waiting, as for a secret not set: the fix is outside
            return Outcome(OutcomeKind.RETRY, f"environment variable {secret_env} is no "
                                              f"signing secret: {e}")
        now = int(time.time())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        msg_id, body_obj = payload(messages, digest, stamp)
        shown = self.cfg.option("url")  # what is said and stored: ${NAME}, never its value
        try:
            url = expand_env(shown).strip()
        except KeyError as e:
            return Outcome(OutcomeKind.RETRY, f"environment variable {e.args[0]} is not set")
        style = self.cfg.option("format", "standard")
        if style == "slack":
            body_obj = {"text": chat_text(messages, digest, style)}
        elif style == "discord":  # no @everyone, role or user pings from a feed's words
            body_obj = {"content": chat_text(messages, digest, style),
                        "allowed_mentions": {"parse": []}}
        elif style == "teams":
            body_obj = teams_card(messages, digest)
        elif style == "matrix":  # PUT under the notification's id: a resend is one event
            url = f"{url.rstrip('/')}/{quote(msg_id, safe='')}"
            body_obj = matrix_message(messages, digest)
        elif style == "telegram":  # the Bot API's sendMessage, in its HTML parse mode
            body_obj = telegram_message(messages, digest, self.cfg.option("chat_id"))
        elif style == "ntfy":  # published as JSON to the server, the topic in the body
            endpoint = ntfy_endpoint(url)
            if endpoint is None:  # the config checked it; the environment may have changed
                return Outcome(OutcomeKind.DEAD, f"{shown} names no ntfy topic")
            url, topic = endpoint
            body_obj = ntfy_message(messages, digest, topic)
        body = json.dumps(body_obj, ensure_ascii=False, separators=(",", ":")).encode()
        # the notifier's own headers (a receiver's token) may replace the User-Agent; the
        # ones the body and its signature depend on are ours (the config refuses them)
        headers = CaseInsensitiveDict({"User-Agent": USER_AGENT})
        headers.update(self.cfg.headers)
        headers.update({"Content-Type": "application/json", "webhook-id": msg_id,
                        "webhook-timestamp": str(now)})
        if key is not None:
            headers["webhook-signature"] = sign(key, msg_id, now, body)
        proxy = self.proxies.for_url(url)
        method = "PUT" if style == "matrix" else "POST"
        deadline = time.monotonic() + self.timeout
        try:
            # redirects are not followed: a receiver that moved says so with a 3xx, recorded
            resp = self.session.request(
                method, url, data=body, headers=headers, stream=True,
                timeout=self.timeout, allow_redirects=False,
                proxies={"http": proxy.url_with_auth(), "https": proxy.url_with_auth()}
                if proxy else None)
        except requests.RequestException as e:
            # what happened, as fetch words it, not requests' nested repr of its pool
            if is_timeout(e):
                why = f"timed out after {self.timeout:g}s"
            elif isinstance(e, requests.exceptions.ProxyError) and proxy:
                why = (f"cannot connect through the proxy {proxy} ({proxy.origin}): "
                       f"{error_reason(e)}")
            elif isinstance(e, requests.ConnectionError):
                why = cannot_connect(e, url)
            else:
                why = f"{e.__class__.__name__}: {error_reason(e)}"
            return Outcome(OutcomeKind.RETRY, redacted(f"{method} {shown}: {why}", shown))
        got = _answer(resp, deadline)
        try:
            text = got.decode(resp.encoding or "utf-8", "replace")
        except LookupError:  # a charset no codec is called
            text = got.decode("utf-8", "replace")
        answer = redacted(f"HTTP {resp.status_code} {text[:200]}".strip(), shown)
        if 200 <= resp.status_code < 300:
            refused = _TEAMS_REFUSAL.search(text) if style == "teams" else None
            if refused is None:
                return Outcome(OutcomeKind.SENT, response=answer)
            # a connector that did not post answers 200 and says why in its body
            said = int(refused.group(1))
            kind = (OutcomeKind.RETRY if said in (408, 425, 429) or said >= 500
                    else OutcomeKind.DEAD)
            return Outcome(kind, f"HTTP {resp.status_code}, but Teams did not post it: "
                                 f"{refused.group(0)}", answer)
        if resp.status_code == 410:
            return Outcome(OutcomeKind.GONE, f"{shown} answered 410 Gone: notifier disabled",
                           answer)
        if resp.status_code in (408, 425, 429) or resp.status_code >= 500:
            return Outcome(OutcomeKind.RETRY, answer, answer, _retry_after(resp, got))
        location = resp.headers.get("Location", "").strip()
        if 300 <= resp.status_code < 400 and location:
            # not followed: the POST and its signature would go where the config never said
            moved = redacted(urljoin(url, location)[:300], shown)
            return Outcome(OutcomeKind.DEAD, f"HTTP {resp.status_code}: the receiver moved to "
                                             f"{moved} (not followed): write that as the "
                                             "notifier's url", answer)
        return Outcome(OutcomeKind.DEAD, answer, answer)
