"""The email channel (smtplib): plain text and HTML alternatives, a stable Message-ID."""

from __future__ import annotations

import contextlib
import hashlib
import os
import smtplib
import socket
import ssl
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from ..config import NotifierConfig
from ..fetch import certificate_problem
from ..urls import dns_name
from .base import Message, Outcome, OutcomeKind
from .render import DIGEST_CUT, Cut, header_safe, html_document, subject, text_body

_DEFAULT_PORT = {"none": 25, "starttls": 587, "tls": 465}
# Subjects are capped at 200 characters, so no header line nears the 998-octet limit and
# none needs folding (which some clients render with a stray leading space).
_POLICY = policy.SMTP.clone(max_line_length=998)


def ascii_domain(mailbox: str) -> str:
    """`mailbox` ("Name <local@domain>" or bare) with its domain as DNS holds it: an
    internationalised one (bücher.example) as its xn-- name, which every relay takes,
    where the UTF-8 form needs one that speaks SMTPUTF8. The local part stays as it is."""
    domain = parseaddr(mailbox)[1].rpartition("@")[2]
    if domain.isascii():
        return mailbox
    # config.is_mailbox: the address ends the text, bare or in <…>
    head, _, tail = mailbox.rpartition("@")
    return f"{head}@{tail.replace(domain, dns_name(domain), 1)}"


def message_id(messages: Sequence[Message], domain: str) -> str:
    """Derived from the notification ids, so a resend is the same message to the receiver."""
    if len(messages) == 1:
        local = messages[0].id
    else:
        joined = "\x1f".join(sorted(m.id for m in messages)).encode()
        local = "digest-" + hashlib.sha256(joined).hexdigest()[:24]
    return f"<{local}@{domain}>"


def build(messages: Sequence[Message], *, sender: str, to: Sequence[str],
          digest: bool, subject_prefix: str = "") -> EmailMessage:
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = header_safe(f"{subject_prefix} {subject(messages, digest)}"
                                 if subject_prefix else subject(messages, digest))
    sender, to = ascii_domain(sender), [ascii_domain(t) for t in to]
    msg["From"] = sender  # with its display name, if it has one (encoded by the policy)
    msg["To"] = ", ".join(to)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "harvester.invalid"
    msg["Message-ID"] = message_id(messages, domain)
    parent = messages[0].follows() if len(messages) == 1 else None
    if parent:  # threaded under the item's news (or the failure alert) it follows up
        msg["In-Reply-To"] = msg["References"] = f"<{parent}@{domain}>"
    # RFC 3834, and Exchange's own header: no out-of-office reply to a notification
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    # when the event was queued: a resend carries the same Date as the first send
    with contextlib.suppress(ValueError):
        msg["Date"] = format_datetime(
            datetime.fromisoformat(messages[0].created_at.replace("Z", "+00:00")))
    msg["X-Harvester-Event"] = header_safe(messages[0].event if len(messages) == 1 else "digest")
    cut = DIGEST_CUT if digest else Cut()
    msg.set_content(text_body(messages, cut))
    msg.add_alternative(html_document(messages, cut), subtype="html")
    return msg


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    """smtplib's {address: (code, answer)} as a reader would write it."""
    return ", ".join(f"{addr} ({code} {msg.decode(errors='replace')})"
                     for addr, (code, msg) in refused.items())


class EmailChannel:
    def __init__(self, cfg: NotifierConfig, timeout: float = 30.0):
        self.cfg = cfg
        self.timeout = float(cfg.option("timeout", timeout))

    def _credentials(self) -> tuple[str, str] | str | None:
        user_env, pass_env = self.cfg.option("username_env"), self.cfg.option("password_env")
        if not user_env:
            return None
        for var in (user_env, pass_env):
            if var and var not in os.environ:
                return f"environment variable {var} is not set"
        return os.environ[user_env], os.environ.get(pass_env or "", "")

    def send(self, messages: Sequence[Message], *, digest: bool) -> Outcome:
        security = self.cfg.option("security", "starttls")
        host = self.cfg.option("host")
        port = int(self.cfg.option("port", _DEFAULT_PORT[security]))
        creds = self._credentials()
        if isinstance(creds, str):
            return Outcome(OutcomeKind.RETRY, creds)
        # domains as DNS holds them, once: the headers and the envelope alike
        sender = ascii_domain(self.cfg.option("from"))
        to = [ascii_domain(t) for t in self.cfg.option("to")]
        msg = build(messages, sender=sender, to=to, digest=digest,
                    subject_prefix=self.cfg.option("subject_prefix", ""))
        context = ssl.create_default_context()
        greeted = False
        try:
            smtp = (smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=context)
                    if security == "tls" else smtplib.SMTP(host, port, timeout=self.timeout))
            greeted = True
            with smtp:
                if security == "starttls":
                    smtp.starttls(context=context)
                if creds:
                    smtp.login(*creds)
                # the envelope takes the bare addresses; the headers keep the names
                envelope = parseaddr(sender)[1]
                rcpts = [parseaddr(t)[1] for t in to]
                unfit = next((a for a in (envelope, *rcpts) if not a.isascii()), None)
                smtp.ehlo_or_helo_if_needed()  # what it takes is said in its EHLO
                if unfit is not None and not smtp.has_extn("smtputf8"):
                    return Outcome(OutcomeKind.DEAD, (
                        f"SMTP {host}:{port} does not take addresses whose mailbox is not "
                        f"ASCII (SMTPUTF8), as {unfit}'s is: give an ASCII address, or a "
                        "relay that takes them"))
                refused = smtp.send_message(msg, from_addr=envelope, to_addrs=rcpts)
        except smtplib.SMTPResponseException as e:
            answer = e.smtp_error.decode(errors="replace") if isinstance(
                e.smtp_error, bytes) else str(e.smtp_error)
            if not 200 <= e.smtp_code < 600:  # smtplib's -1: a reply with no SMTP code
                text = (f"SMTP {host}:{port} does not answer as an SMTP server (a wrong "
                        f"port?): {answer[:120]!r}")
                return Outcome(OutcomeKind.RETRY, text, response=text)
            text = f"SMTP {e.smtp_code} {answer}"
            kind = OutcomeKind.DEAD if 500 <= e.smtp_code < 600 else OutcomeKind.RETRY
            return Outcome(kind, text, response=text)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [c for c, _ in e.recipients.values()]
            text = f"every recipient refused: {_refusals(e.recipients)}"
            permanent = all(500 <= c < 600 for c in codes)
            return Outcome(OutcomeKind.DEAD if permanent else OutcomeKind.RETRY, text, text)
        except (smtplib.SMTPException, OSError) as e:  # OSError covers timeouts and TLS
            if isinstance(e, TimeoutError) or str(e).endswith("timed out"):
                # a server that says nothing at all may be waiting for a TLS handshake
                why = ("" if greeted or security == "tls" else ", with no greeting: if its "
                       'port wants TLS at once (465), that is security = "tls"')
                return Outcome(OutcomeKind.RETRY,
                               f"SMTP {host}:{port}: timed out after {self.timeout:g}s{why}")
            if isinstance(e, socket.gaierror):
                return Outcome(OutcomeKind.RETRY, f"SMTP {host}:{port}: cannot resolve {host}: "
                                                  f"{e.strerror or e}")
            cert = certificate_problem(e, host)
            if cert is not None:
                return Outcome(OutcomeKind.RETRY, f"SMTP {host}:{port}: {cert}")
            if isinstance(e, smtplib.SMTPNotSupportedError) and security == "starttls":
                return Outcome(OutcomeKind.RETRY, (
                    f'SMTP {host}:{port} offers no STARTTLS: security = "none" sends in '
                    "clear text (a relay on this host or a trusted network), or its TLS port "
                    'takes security = "tls" (465)'))
            if getattr(e, "reason", None) == "WRONG_VERSION_NUMBER" and security == "tls":
                return Outcome(OutcomeKind.RETRY, (
                    f"SMTP {host}:{port} answered in clear text, not TLS: its port wants "
                    'security = "starttls" (587) or "none"'))
            return Outcome(OutcomeKind.RETRY, f"SMTP {host}:{port}: {e}")
        if refused:  # sent to the rest; the ones refused are said, and kept in the row
            text = f"some recipients refused: {_refusals(refused)}"
            return Outcome(OutcomeKind.SENT, text, response=text)
        return Outcome(OutcomeKind.SENT, response=f"250 accepted by {host}")
