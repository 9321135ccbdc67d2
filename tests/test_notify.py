"""Notifications end to end: a real SMTP server, a real webhook receiver, a real outbox."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harvester.devserver import Response
from harvester.diff import notification_id
from harvester.errors import ConfigError
from harvester.harvest import poll_sources
from harvester.notify import deliver
from harvester.notify.base import Message, message_from_row
from harvester.notify.render import subject

from .conftest import (
    FEEDS,
    HTTP_FAST,
    KYIV_BEFORE,
    KYIV_DIFF,
    KYIV_WORDS,
    NOW,
    feed_bytes,
    feed_source,
    free_port,
    make_config,
    run_cli,
)
from .servers import PASSWORD, USER, Receiver, SMTPServer, tls_for_tests

HTTP = '[storage]\npath = "h.db"\n[http]\ntimeout = 2\nretries = 0\n[defaults]\ntimezone = "Europe/Vienna"\n'
GERMANY = "Germany joins the European migration organisation ICMPD"


@pytest.fixture
def tls(tmp_path, monkeypatch):
    ctx, ca_file = next(tls_for_tests(tmp_path))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # the client trusts the test CA
    return ctx


@pytest.fixture
def smtp(tls, monkeypatch):
    srv = SMTPServer(tls).start()
    monkeypatch.setenv("HV_SMTP_USER", USER)
    monkeypatch.setenv("HV_SMTP_PASSWORD", PASSWORD)
    yield srv
    srv.stop()


def email_notifier(port: int, **extra: object) -> str:
    lines = ['[[notifiers]]', 'name = "team"', 'kind = "email"',
             'rules = ["press-release", "project-launch"]', 'host = "127.0.0.1"',
             f"port = {port}", 'security = "starttls"', 'username_env = "HV_SMTP_USER"',
             'password_env = "HV_SMTP_PASSWORD"', 'from = "harvester@example.org"',
             'to = ["news-watch@example.org"]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n" + "\n".join(lines) + "\n"


def webhook_notifier(url: str, name: str = "hook", rules: str = '["press-release"]',
                     extra: str = "") -> str:
    return (f'\n[[notifiers]]\nname = "{name}"\nkind = "webhook"\nrules = {rules}\n'
            f'url = "{url}"\nsecret_env = "HV_HOOK_SECRET"\n{extra}')


def two_polls(server, config, store, now=NOW):
    """Baseline on the 15 May feed, then the 27 May one: 3 new items, 1 edited."""
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    list(poll_sources(config, store, clock=lambda: now))
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    return list(poll_sources(config, store, clock=lambda: now))


def test_email_over_starttls_with_auth(server, icmpd_a, config_for, store, smtp):
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=email_notifier(smtp.port))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert (report.sent, report.retrying, report.dead) == (1, 0, 0)
    [msg] = smtp.messages
    assert msg["Subject"] == f"Press Release: {GERMANY}"
    assert msg["From"] == "harvester@example.org" and msg["To"] == "news-watch@example.org"
    [row] = store.outbox()
    assert row["status"] == "sent" and row["event"] == "item.new"
    assert msg["Message-ID"] == f"<{row['id']}@example.org>"
    assert msg["Date"] == "Thu, 28 May 2020 08:00:00 +0000"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    url = ("https://www.icmpd.org/news-centre/news-detail/press-release-germany-joins-the-european"
           "-migration-organisation-icmpd/")
    assert f"== Press Release: {GERMANY}" in text
    assert "2020-05-20 09:41 CEST · icmpd-rss · rules: press-release" in text
    assert url in text and "Germany becomes the 18th Member State" in text
    assert f'<a href="{url}">{url}</a>' in html
    # a resend is the same message to the receiver: same Message-ID
    store.requeue(NOW, [row["id"]])
    deliver(config, store, NOW)
    assert [m["Message-ID"] for m in smtp.messages] == [msg["Message-ID"]] * 2


def addressed(config_for, feed: str, port: int, sender: str, to: list[str]):
    """The ICMPD feed's config with an email notifier from `sender` to `to`."""
    return config_for(feed_source("icmpd-rss", feed), notifiers=email_notifier(port).replace(
        'from = "harvester@example.org"', f"from = {json.dumps(sender, ensure_ascii=False)}"
    ).replace('to = ["news-watch@example.org"]', f"to = {json.dumps(to, ensure_ascii=False)}"))


def test_addresses_with_display_names_show_them_and_send_to_the_bare_addresses(
        server, icmpd_a, config_for, store, smtp):
    """"ICMPD watch <…>" as mail clients show a sender; the envelope takes the bare
    addresses, and a name outside ASCII is encoded, as headers must be."""
    config = addressed(config_for, icmpd_a, smtp.port, "ICMPD watch <harvester@example.org>",
                       ["Jürgen Müller <news-watch@example.org>", "ops@example.org"])
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 1
    [msg] = smtp.messages
    assert (msg["From"], msg["To"]) == (
        "ICMPD watch <harvester@example.org>",
        "Jürgen Müller <news-watch@example.org>, ops@example.org")
    assert smtp.handler.envelopes == [
        ("harvester@example.org", ["news-watch@example.org", "ops@example.org"])]
    assert msg["Message-ID"].endswith("@example.org>")
    raw = msg.as_bytes()
    assert b"From: ICMPD watch <harvester@example.org>" in raw
    assert "Müller".encode() not in raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 in the header


@pytest.mark.parametrize("bad", ["Doe, John <j@example.org>", "a@example.org, b@example.org",
                                 "A <a@example.org> <b@example.org>", "nobody"])
def test_an_address_that_is_not_one_is_refused_with_its_key(tmp_path, bad):
    cfg = make_config(tmp_path, HTTP + (
        '[[notifiers]]\nname = "team"\nkind = "email"\nhost = "smtp.example"\n'
        f'from = "a@example.org"\nto = ["ok@example.org", "{bad}"]\n'), rules=False)
    r = run_cli("--config", str(cfg), "check")
    assert (r.returncode, r.stderr) == (2, (
        f"harvester: error: {cfg}: notifiers[0].to[1]: {bad!r} is not an e-mail address "
        "(name@example.org, or with a name: 'ICMPD watch <name@example.org>')\n"))


def test_recipients_the_server_refuses_are_said_and_the_rest_still_get_the_mail(
        server, icmpd_a, config_for, store, smtp, monkeypatch):
    smtp.handler.unknown = {"gone@example.org"}
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=email_notifier(
        smtp.port).replace('to = ["news-watch@example.org"]',
                           'to = ["news-watch@example.org", "gone@example.org"]'))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    refused = ("some recipients refused: gone@example.org (550 5.1.1 <gone@example.org>: "
               "Recipient address rejected: User unknown)")
    assert (report.sent, report.retrying, report.dead, report.errors) == (
        1, 0, 0, [f"team: {refused}"])  # said by `once` and logged by the daemon
    assert smtp.handler.envelopes == [("harvester@example.org", ["news-watch@example.org"])]
    [row] = store.outbox()
    assert (row["status"], row["response"]) == ("sent", refused)
    # every one refused: the message cannot go anywhere, so it is dead, not retried
    smtp.handler.unknown = {"news-watch@example.org", "gone@example.org"}
    store.requeue(NOW, [row["id"]])
    report = deliver(config, store, NOW)
    assert (report.sent, report.retrying, report.dead) == (0, 0, 1)
    [row] = store.outbox()
    assert (row["status"], row["last_error"]) == ("dead", (
        "every recipient refused: news-watch@example.org (550 5.1.1 <news-watch@example.org>: "
        "Recipient address rejected: User unknown), gone@example.org (550 5.1.1 "
        "<gone@example.org>: Recipient address rejected: User unknown)"))


def test_an_address_at_an_internationalised_domain_goes_by_its_ascii_name(
        server, icmpd_a, config_for, store, smtp, tls):
    """A relay without SMTPUTF8 (this test's, as many on-premises ones) refused every
    message to news@bücher.example, retried for ever. A domain goes as its xn-- name, which
    every relay takes, in the envelope and the headers alike. A mailbox whose own part is
    not ASCII needs SMTPUTF8: a relay without it is said so, and the message is dead, as no
    retry makes the relay take it."""
    smtp = SMTPServer(tls, utf8=False).start()  # the fixture's takes SMTPUTF8
    config = addressed(config_for, icmpd_a, smtp.port, "ICMPD watch <harvester@bücher.example>",
                       ["Jürgen <news@BÜCHER.example>", "ops@example.org"])
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 1
    [msg] = smtp.messages
    assert (msg["From"], msg["To"]) == ("ICMPD watch <harvester@xn--bcher-kva.example>",
                                        "Jürgen <news@xn--bcher-kva.example>, ops@example.org")
    assert msg["Message-ID"].endswith("@xn--bcher-kva.example>")
    assert smtp.handler.envelopes == [
        ("harvester@xn--bcher-kva.example", ["news@xn--bcher-kva.example", "ops@example.org"])]
    local = addressed(config_for, icmpd_a, smtp.port, "harvester@example.org",
                      ["Jürgen <jürgen@bücher.example>", "news@example.org"])
    [row] = store.outbox()
    store.requeue(NOW, [row["id"]])
    report = deliver(local, store, NOW)
    assert (report.sent, report.retrying, report.dead) == (0, 0, 1)
    [row] = store.outbox()
    assert (row["status"], row["last_error"]) == ("dead", (
        f"SMTP 127.0.0.1:{smtp.port} does not take addresses whose mailbox is not ASCII "
        "(SMTPUTF8), as jürgen@xn--bcher-kva.example's is: give an ASCII address, or a relay "
        "that takes them"))
    smtp.stop()


def mail_of(feed: bytes, server, config_for, store, smtp):
    """The one email a feed's one new item (first_run = "all") is delivered as."""
    server.route("/one", Response(feed))
    config = config_for(feed_source("one", server.url("/one"), first_run="all"),
                        notifiers=email_notifier(smtp.port))
    list(poll_sources(config, store, clock=lambda: NOW))
    assert deliver(config, store, NOW).sent == 1
    [msg] = smtp.messages
    assert [rcpt for _, rcpt in smtp.handler.envelopes] == [["news-watch@example.org"]]
    return msg


def test_email_html_is_escaped_and_sanitised(server, config_for, store, smtp):
    evil = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            b"<item><title>Press Release: &lt;script&gt;alert(1)&lt;/script&gt;Hi\r\nBcc: x@evil</title>"
            b"<link>javascript:alert(2)</link><guid>g1</guid>"
            b'<description>&lt;img src=x onerror="alert(3)"&gt;&lt;a href="javascript:alert(4)"&gt;'
            b"click&lt;/a&gt; &amp;lt;b&amp;gt;</description></item></channel></rss>")
    msg = mail_of(evil, server, config_for, store, smtp)
    html = msg.get_body(("html",)).get_content()
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html
    assert "<img" not in html
    assert "&lt;b&gt;" in html  # text that looks like markup stays visible text
    assert msg["Subject"] == "Press Release: Hi Bcc: x@evil"  # CR/LF never reach a header
    assert msg["Bcc"] is None


@pytest.mark.parametrize("word", ["=?utf-8?q?Hi=0D=0ABcc:_victim@example.org?=",
                                  "=?utf-8?b?SGkNCkJjYzogdmljdGltQGV4YW1wbGUub3Jn?="])
def test_an_encoded_word_in_a_title_cannot_break_the_subject(server, config_for, store, smtp,
                                                             word):
    """RFC 2047 words in a title: Python's email package would decode them when the Subject
    is set and write their CR/LF out raw, a header of the feed's choosing. They stay text."""
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>'
            + f"Press Release: {word} now".encode()
            + b"</title><link>http://news.example/w</link></item></channel></rss>")
    msg = mail_of(feed, server, config_for, store, smtp)
    assert msg["Bcc"] is None and "victim" not in "".join(msg.keys())
    # the reader sees the title as the feed wrote it (a zero-width space after the "=")
    shown = word.replace("=?", "=\u200b?")
    assert msg["Subject"] == f"Press Release: {shown} now"


def test_a_titles_direction_override_cannot_turn_what_follows_it(server, config_for, store,
                                                                 smtp):
    """A right-to-left override (U+202E) in a title shows "exe.pdf" as "fdp.exe" and, never
    closed, turns the rest of the Subject line too — the prefix after it, a client's own
    text. The title reaches the message as the characters it is, in their order."""
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>'
            + "Press Release: Annual report ‮fdp.exe‬ and ⁧‭‫ more"
            .encode() + b"</title><link>http://news.example/r</link></item></channel></rss>")
    msg = mail_of(feed, server, config_for, store, smtp)
    assert msg["Subject"] == "Press Release: Annual report fdp.exe and more"
    [item] = store.items()
    assert item["title"] == "Annual report fdp.exe and more"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    for body in (html, text):
        assert "Annual report fdp.exe and more" in body
        assert not any(c in body for c in "‪‫‬‭‮⁦⁧⁨⁩")


def test_an_smtp_certificate_not_trusted_is_said_with_where_the_ca_goes(
        server, icmpd_a, config_for, store, smtp, monkeypatch):
    """A relay under an organisation's own CA, its CA not given: the row waits, saying
    what is wrong with the certificate in the words feeds and webhooks use."""
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=email_notifier(smtp.port))
    two_polls(server, config, store)
    monkeypatch.delenv("SSL_CERT_FILE")
    report = deliver(config, store, NOW)
    assert (report.sent, report.retrying) == (0, 1)
    [row] = store.outbox()
    assert (row["status"], row["last_error"]) == ("pending", (
        f"SMTP 127.0.0.1:{smtp.port}: the TLS certificate of 127.0.0.1 is not signed by a "
        "CA this machine trusts (unable to get local issuer certificate): a private CA "
        "(your organisation's, a TLS-inspecting proxy's) goes in SSL_CERT_FILE, a PEM file"))
    assert smtp.messages == []


def test_email_over_implicit_tls(server, icmpd_a, config_for, store, tls, monkeypatch):
    from aiosmtpd.controller import Controller

    from .servers import _Collect

    handler, port = _Collect(), free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=tls)
    ctl.start()
    try:
        notifier = (email_notifier(port).replace('security = "starttls"', 'security = "tls"')
                    .replace('username_env = "HV_SMTP_USER"\npassword_env = "HV_SMTP_PASSWORD"\n', ""))
        config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=notifier)
        two_polls(server, config, store)
        assert deliver(config, store, NOW).sent == 1
    finally:
        ctl.stop()
    assert [m["Subject"] for m in handler.messages] == [f"Press Release: {GERMANY}"]


@pytest.mark.parametrize(("security", "said"), [
    ("starttls", 'offers no STARTTLS: security = "none" sends in clear text (a relay on this '
                 'host or a trusted network), or its TLS port takes security = "tls" (465)'),
    ("tls", 'answered in clear text, not TLS: its port wants security = "starttls" (587) or '
            '"none"'),
])
def test_an_smtp_security_its_server_does_not_speak_is_said_with_the_one_it_does(
        server, icmpd_a, config_for, store, security, said, tls):
    """A relay without TLS (a local Postfix, a mail catcher) against the default starttls,
    or implicit TLS against a plain port: the row waits, saying which setting fits."""
    from aiosmtpd.controller import Controller

    from .servers import _Collect

    handler, port = _Collect(), free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        notifier = (email_notifier(port).replace('security = "starttls"',
                                                 f'security = "{security}"')
                    .replace('username_env = "HV_SMTP_USER"\npassword_env = "HV_SMTP_PASSWORD"\n',
                             ""))
        config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=notifier)
        two_polls(server, config, store)
        assert deliver(config, store, NOW).retrying == 1
    finally:
        ctl.stop()
    [row] = store.outbox()
    assert row["last_error"] == f"SMTP 127.0.0.1:{port} {said}"
    assert handler.messages == []
    # and STARTTLS against a port that wants TLS at once: no greeting ever comes
    ctl = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=tls)
    ctl.start()
    try:
        notifier = notifier.replace(f'security = "{security}"', 'security = "starttls"')
        config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=notifier,
                            http=HTTP_FAST + '\n[delivery]\ntimeout = "1s"\n')
        assert deliver(config, store, NOW + timedelta(hours=1)).retrying == 1
    finally:
        ctl.stop()
    [row] = store.outbox()
    assert row["last_error"] == (
        f"SMTP 127.0.0.1:{port}: timed out after 1s, with no greeting: if its port wants "
        'TLS at once (465), that is security = "tls"')


def test_smtp_down_then_delivered_on_the_next_run(server, icmpd_a, config_for, store, tls,
                                                  monkeypatch):
    monkeypatch.setenv("HV_SMTP_USER", USER)
    monkeypatch.setenv("HV_SMTP_PASSWORD", PASSWORD)
    port = free_port()
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=email_notifier(port))
    two_polls(server, config, store)
    first = deliver(config, store, NOW, rand=lambda: 0.5)
    assert (first.sent, first.retrying, first.dead) == (0, 1, 0)
    [row] = store.outbox()
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] == "2020-05-28T08:00:30Z"  # 30 s backoff, jitter at midpoint
    assert "Connection refused" in row["last_error"]
    assert deliver(config, store, NOW + timedelta(seconds=10)).sent == 0  # not due yet
    smtp = SMTPServer(tls, port=port).start()
    try:
        later = deliver(config, store, NOW + timedelta(seconds=31))
        assert later.sent == 1 and [m["Subject"] for m in smtp.messages] == [
            f"Press Release: {GERMANY}"]
    finally:
        smtp.stop()
    assert store.outbox()[0]["status"] == "sent"


def _message(event: str, **data: object) -> Message:
    return Message(id="n1", notifier="team", event=event, source="icmpd-rss",
                   created_at="2020-05-20T07:41:00Z", item={"title": GERMANY}, data=data)


@pytest.mark.parametrize(("messages", "expected"), [
    ([_message("item.new")], "harvester: 1 notification (1 new item)"),
    ([_message("item.new"), _message("item.changed")],
     "harvester: 2 notifications (1 new item, 1 edited)"),
    ([_message("item.changed")] * 3, "harvester: 3 notifications (3 edited)"),
    ([_message("source.failing", failures=3), _message("item.new")],
     "harvester: 2 notifications (1 new item, 1 source alert)"),
])
def test_a_digest_subject_counts_in_words(messages, expected):
    assert subject(messages, digest=True) == expected


def test_a_digest_from_several_sources_reads_source_by_source():
    """A day's news from two sites: each site's under its own heading, where its first
    message stood, in both parts of the email; one site's digest has no heading at all."""
    from dataclasses import replace

    from harvester.notify.email import build

    def msg(i: int, source: str, event: str = "item.new") -> Message:
        return replace(_message(event), id=f"n{i}", source=source, item={"title": f"T{i}"})

    day = [msg(1, "icmpd-rss"), msg(2, "icmpd-projects"), msg(3, "icmpd-rss", "item.changed"),
           msg(4, "icmpd-projects"), msg(5, "icmpd-rss")]
    email = build(day, sender="h@example.org", to=["t@example.org"], digest=True)
    text = email.get_body(("plain",)).get_content()
    assert [line for line in text.splitlines() if line.startswith(("#", "=="))] == [
        "# icmpd-rss: 2 new items, 1 edited", "== T1", "== Updated: T3", "== T5",
        "# icmpd-projects: 2 new items", "== T2", "== T4"]
    page = email.get_body(("html",)).get_content()
    assert re.findall(r"<h[12]>(.*?)</h[12]>", page) == [
        "icmpd-rss <small>2 new items, 1 edited</small>", "T1", "Updated: T3", "T5",
        "icmpd-projects <small>2 new items</small>", "T2", "T4"]
    one = build([msg(1, "icmpd-rss"), msg(5, "icmpd-rss")], sender="h@example.org",
                to=["t@example.org"], digest=True)
    assert one.get_body(("plain",)).get_content().startswith("== T1\n")
    assert "<h1>" not in one.get_body(("html",)).get_content()


def test_a_digest_email_lists_200_messages_with_short_summaries_and_counts_the_rest():
    """A flood (a first run of 'all', a day of a busy site) must not become an email the
    mail server refuses for its size: 1,000 items with 5,000-character summaries made
    10.7 MB; a message on its own keeps its whole summary."""
    from dataclasses import replace

    from harvester.notify.email import build

    def msg(i: int, source: str) -> Message:
        return replace(_message("item.new"), id=f"n{i}", source=source,
                       item={"title": f"T{i}", "summary": "word " * 1000,
                             "url": f"https://www.icmpd.org/news/{i}"})

    flood = [msg(i, "icmpd-rss") for i in range(240)] + [msg(i, "icmpd-projects")
                                                         for i in range(240, 250)]
    email = build(flood, sender="h@example.org", to=["t@example.org"], digest=True)
    assert len(email.as_bytes()) < 600_000
    assert email["Subject"] == "harvester: 250 notifications (250 new items)"
    text = email.get_body(("plain",)).get_content()
    assert text.count("\n== T") == 200 and "== T199\n" in text and "== T200\n" not in text
    assert text.startswith("# icmpd-rss: 240 new items\n")  # its tally: all of them
    assert "# icmpd-projects" not in text  # past the 200: counted, not listed
    assert text.endswith("\n\n… and 50 more notifications (harvester outbox lists them)\n")
    summary = next(line for line in text.splitlines() if line.startswith("   word"))
    assert summary == "   " + ("word " * 120)[:599].rstrip() + "…"
    page = email.get_body(("html",)).get_content()
    assert page.count("<h2>") == 200
    assert "<p><i>… and 50 more notifications (harvester outbox lists them)</i></p>" in page
    alone = build([msg(1, "icmpd-rss")], sender="h@example.org", to=["t@example.org"],
                  digest=False).get_body(("plain",)).get_content()
    assert "   " + "word " * 1000 + "\n" in alone


def test_a_webhook_digest_carries_each_edits_changes():
    from dataclasses import replace

    from harvester.edits import field_changes
    from harvester.notify.webhook import payload

    edited = replace(_message("item.changed"), id="n2", changes=field_changes(
        {"title": "Old", "content": "<p>a b</p>"}, {"title": "New", "content": "<p>a c</p>"}))
    _, body = payload([_message("item.new"), edited], digest=True, timestamp="1")
    new, changed = body["data"]["notifications"]
    assert "changes" not in new
    assert changed["changes"] == [
        {"field": "title", "before": "Old", "after": "New", "diff": ["-Old", "+New"],
         "words": []},  # one word of one: a rewrite, told by lines
        {"field": "content", "diff": ["-a b", "+a c"], "words": [[["=", "a"], ["-", "b"],
                                                                  ["+", "c"]]]}]


def test_a_rewritten_items_message_cuts_its_diff_short():
    from harvester.notify.base import MAX_DIFF_LINES, message_from_row
    from harvester.notify.render import html_document

    old = " ".join(f"word{i}" for i in range(1000))
    new = " ".join(f"other{i}" for i in range(1000))
    row = {"id": "n1", "notifier": "team", "event": "item.changed", "item_id": "i_1",
           "ref": "v1:new", "created_at": "2020-05-20T07:41:00Z", "title": "T",
           "summary": new, "item_hash": "v1:new", "version": 2}
    m = message_from_row(row, [{"version": 1, "content_hash": "v1:old", "title": "T",
                                "summary": old}])
    [change] = m.changes
    assert len(change.diff) == MAX_DIFF_LINES + 1
    more = change.diff[-1]
    assert more.startswith(" … ") and more.endswith(" more lines")
    assert f"<li>{more[1:]}</li></ul>" in html_document([m])


def test_a_notifier_with_an_at_time_sends_one_digest_then(server, icmpd_a, config_for, store,
                                                          smtp):
    """`at = "08:00"`: the day's news waits in the outbox, visible, and goes as one email
    at 08:00 in the notifier's time zone (the defaults' Europe/Vienna here)."""
    daily = email_notifier(smtp.port, at="08:00").replace(
        'rules = ["press-release", "project-launch"]', "rules = []")
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=daily)
    two_polls(server, config, store)  # at NOW, 10:00 in Vienna: after today's 08:00
    rows = store.outbox()
    assert [(r["status"], r["next_attempt_at"]) for r in rows] == [
        ("pending", "2020-05-29T06:00:00Z")] * 3
    assert deliver(config, store, NOW + timedelta(hours=19, minutes=59)).sent == 0
    assert smtp.messages == []
    assert deliver(config, store, NOW + timedelta(hours=22)).sent == 3
    [msg] = smtp.messages
    assert msg["Subject"] == "harvester: 3 notifications (3 new items)"
    text = msg.get_body(("plain",)).get_content()
    assert f"== Press Release: {GERMANY}" in text and text.count("\n== ") == 2


def test_a_work_days_digest_keeps_the_weekends_news_for_monday(server, icmpd_a, config_for,
                                                               store, smtp):
    """`at = "mon-fri 08:00"`: news queued on a Friday evening (18:00 in Vienna) goes in
    Monday's 08:00 digest, not on Saturday or Sunday."""
    daily = email_notifier(smtp.port, at="mon-fri 08:00").replace(
        'rules = ["press-release", "project-launch"]', "rules = []")
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=daily)
    friday_evening = NOW + timedelta(days=1, hours=8)
    two_polls(server, config, store, now=friday_evening)
    assert [r["next_attempt_at"] for r in store.outbox()] == ["2020-06-01T06:00:00Z"] * 3
    for weekend in (timedelta(days=1), timedelta(days=2)):  # Saturday's, Sunday's 08:00
        assert deliver(config, store, friday_evening + weekend - timedelta(hours=10)).sent == 0
    assert deliver(config, store, datetime(2020, 6, 1, 6, tzinfo=UTC)).sent == 3
    [msg] = smtp.messages
    assert msg["Subject"] == "harvester: 3 notifications (3 new items)"


@pytest.mark.parametrize(("before", "after", "quiet", "sent", "emails"), [
    # `at` taken out: what waited goes at the next pass, each on its own
    ("08:00", None, None, timedelta(minutes=1), 3),
    # weekly (Monday 1 June) made daily: the next 08:00 in Vienna, 29 May, 06:00 UTC
    ("mon 08:00", "08:00", timedelta(hours=19, minutes=59), timedelta(hours=22), 1),
    # the hour moved to later today: 17:00 in Vienna, 15:00 UTC
    ("08:00", "17:00", timedelta(hours=6, minutes=59), timedelta(hours=7), 1),
    # made weekly: the 08:00 already promised is kept, not put off to Monday
    ("08:00", "mon 08:00", timedelta(hours=19, minutes=59), timedelta(hours=22), 1),
])
def test_news_held_for_an_at_time_follows_the_schedule_as_configured_now(
        server, icmpd_a, config_for, store, smtp, before, after, quiet, sent, emails):
    """A user who changes or removes a notifier's `at` means the news already waiting too:
    it goes by the schedule now configured whenever that sends it sooner, and never later
    than the time it was held for (3 items queued at NOW, 10:00 in Vienna)."""
    def daily(at):
        extra = {"at": at} if at else {}
        return email_notifier(smtp.port, **extra).replace(
            'rules = ["press-release", "project-launch"]', "rules = []")

    two_polls(server, config_for(feed_source("icmpd-rss", icmpd_a), notifiers=daily(before)),
              store)
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=daily(after))
    if quiet is not None:
        assert deliver(config, store, NOW + quiet).sent == 0
        assert smtp.messages == []
    assert deliver(config, store, NOW + sent).sent == 3
    assert len(smtp.messages) == emails
    assert [r["status"] for r in store.outbox()] == ["sent"] * 3


def test_outbox_lists_held_news_at_the_time_the_schedule_configured_now_sends_it(
        server, icmpd_a, tmp_path):
    """`harvester outbox` says when a row goes: after `at` is taken out, at once (the
    time it was queued), not at the weekly time it was held for; `once` then sends it."""
    weekly = ('\n[[notifiers]]\nname = "team"\nkind = "console"\nrules = []\n'
              'at = "mon 07:30"\n')
    cfg = make_config(tmp_path, HTTP_FAST + feed_source("icmpd-rss", icmpd_a) + weekly)
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    assert run_cli("--config", str(cfg), "once").returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    assert run_cli("--config", str(cfg), "once").returncode == 0
    rows = [json.loads(line) for line in run_cli(
        "--config", str(cfg), "outbox", "--json").stdout.splitlines()]
    assert len(rows) == 3 and all(r["next_attempt_at"] > r["created_at"] for r in rows)
    cfg.write_text(cfg.read_text("utf-8").replace('at = "mon 07:30"\n', ""), "utf-8")
    listed = run_cli("--config", str(cfg), "outbox")
    assert [line.split()[-1] for line in listed.stdout.splitlines()] == [
        r["created_at"] for r in rows]
    rows = [json.loads(line) for line in run_cli(
        "--config", str(cfg), "outbox", "--json").stdout.splitlines()]
    assert [r["next_attempt_at"] for r in rows] == [r["created_at"] for r in rows]
    sent = run_cli("--config", str(cfg), "once")
    assert sent.returncode == 0 and "delivery: 3 sent, 0 waiting to retry, 0 dead" in sent.stderr
    assert sent.stdout.count("\n== ") + sent.stdout.startswith("== ") == 3  # one by one


def test_slack_and_discord_formats_post_what_those_services_read(server, icmpd_a, config_for,
                                                                  store, receiver):
    hooks = (webhook_notifier(receiver.url + "/slack", name="slack", rules='["press-release"]',
                              extra='format = "slack"\n')
             + webhook_notifier(receiver.url + "/edits", name="edits", rules="[]",
                                extra='format = "slack"\non = ["changed"]\n')
             + webhook_notifier(receiver.url + "/discord", name="discord",
                                extra='format = "discord"\n'))
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=hooks)
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 3
    bodies = {d.path.rpartition("/")[2]: d.body for d in receiver.deliveries}
    assert bodies["edits"]["text"].splitlines()[-2:] == [
        "summary changed:", *(f"    {d}" for d in KYIV_WORDS)]
    url = ("https://www.icmpd.org/news-centre/news-detail/press-release-germany-joins-the-european"
           "-migration-organisation-icmpd/")
    assert bodies["slack"]["text"].splitlines()[:3] == [
        f"*Press Release: {GERMANY}*", "2020-05-20 09:41 CEST · icmpd-rss · rules: press-release",
        f"<{url}>"]
    assert set(bodies["discord"]) == {"content", "allowed_mentions"}
    assert bodies["discord"]["allowed_mentions"] == {"parse": []}
    assert bodies["discord"]["content"].splitlines()[:3] == [
        f"**Press Release: {GERMANY}**",
        "2020-05-20 09:41 CEST · icmpd-rss · rules: press-release",
        url]


def test_teams_format_posts_an_adaptive_card(server, icmpd_a, config_for, store, receiver):
    hooks = (webhook_notifier(receiver.url + "/teams", name="teams", rules='["press-release"]',
                              extra='format = "teams"\n')
             + webhook_notifier(receiver.url + "/edits", name="edits", rules="[]",
                                extra='format = "teams"\non = ["changed"]\n'))
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=hooks)
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 2
    bodies = {d.path.rpartition("/")[2]: d.body for d in receiver.deliveries}
    [attachment] = bodies["teams"]["attachments"]
    assert bodies["teams"]["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    url = ("https://www.icmpd.org/news-centre/news-detail/press-release-germany-joins-the-european"
           "-migration-organisation-icmpd/")
    runs = [b["inlines"] for b in card["body"]]
    assert runs[:2] == [
        [{"type": "TextRun", "text": f"Press Release: {GERMANY}", "weight": "Bolder",
          "selectAction": {"type": "Action.OpenUrl", "url": url}}],
        [{"type": "TextRun", "text": "2020-05-20 09:41 CEST · icmpd-rss · rules: press-release",
          "isSubtle": True, "size": "Small"}]]
    assert runs[2][0]["text"] == ("Germany becomes the 18th Member State of the International "
                                  "Centre for Migration Policy Development...")
    assert "separator" not in card["body"][0]
    edit = [b["inlines"][0]["text"] for b in bodies["edits"]["attachments"][0]["content"]["body"]]
    assert edit[-2:] == ["summary changed:", "\n".join(KYIV_WORDS)]


_TEAMS_FAILED = ("Webhook message delivery failed with error: Microsoft Teams endpoint returned "
                 "HTTP error {} with ContextId tcid=0,server=msgapi-production-weu-azsc2-4-83,"
                 "cv=deTZlaI1ZkSCbxeoeDR6zA.0")


@pytest.mark.parametrize(("said", "status", "attempts"), [
    # rate-limited, or Teams' own trouble: retried, as a 429 or 5xx would be
    (429, "pending", 1), (502, "pending", 1),
    # a card Teams refuses will be refused again: dead at once, its words kept
    (400, "dead", 1)])
def test_a_teams_connector_failure_answered_200_is_a_failure(
        server, icmpd_a, config_for, store, receiver, said, status, attempts):
    """Teams' connectors answer HTTP 200 when they did not post: "Connectors do not throw
    429s", Microsoft's docs say; the body says what failed. Taken as 200, every message
    of a burst Teams throttled was marked sent and lost."""
    receiver.answers = [(200, {"Content-Type": "text/plain"},
                         _TEAMS_FAILED.format(said).encode())]
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(
        receiver.url, name="teams", extra='format = "teams"\n'))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert report.sent == 0
    [row] = store.outbox()
    assert (row["status"], row["attempts"]) == (status, attempts)
    assert row["last_error"] == (f"HTTP 200, but Teams did not post it: Microsoft Teams "
                                 f"endpoint returned HTTP error {said}")
    assert row["response"] == "HTTP 200 " + _TEAMS_FAILED.format(said)
    if status == "pending":  # and goes once Teams posts it ("1": a connector's yes)
        receiver.answers = [(200, {"Content-Type": "text/plain"}, b"1")]
        assert deliver(config, store, NOW + timedelta(hours=1)).sent == 1


def test_a_teams_card_shows_feed_words_as_written_and_stays_under_the_size_teams_takes():
    from harvester.notify.render import TEAMS_LIMIT, teams_card

    title = "@everyone **Fish** [click](https://evil.example) {{DATE(2020-05-20T07:41:00Z)}}"
    [head] = teams_card([_chat(title, url="javascript:alert(1)")], False)[
        "attachments"][0]["content"]["body"][0]["inlines"]
    # a TextRun is not Markdown and mentions nothing; no link but an http(s) one
    assert head == {"type": "TextRun", "weight": "Bolder", "text":
                    "@everyone **Fish** [click](https://evil.example) {\u200b{DATE(2020-05-20T07:41:00Z)}}"}
    many = [_chat(f"Item {i}", summary="word " * 900) for i in range(30)]
    card = teams_card(many, True)
    body = card["attachments"][0]["content"]["body"]
    assert len(json.dumps(card, ensure_ascii=False).encode()) < TEAMS_LIMIT + 1000
    assert body[0]["inlines"][0]["text"] == "harvester: 30 notifications (30 new items)"
    shown = [b for b in body if b["inlines"][0]["text"].startswith("Item ")]
    assert 0 < len(shown) < 30
    assert body[-1]["inlines"][0]["text"] == (
        f"… and {30 - len(shown)} more notifications (harvester outbox lists them)")


def test_ntfy_format_publishes_to_the_topic_as_json(server, icmpd_a, config_for, store,
                                                   receiver, monkeypatch):
    """ntfy's JSON publishing: POST to the server, the topic in the body; a protected topic's
    token goes as a header."""
    monkeypatch.setenv("HV_NTFY_TOKEN", "tk_abc")
    hooks = webhook_notifier(receiver.url.replace("/hook", "/icmpd-news"), name="phone",
                             extra='format = "ntfy"\n'
                                   'headers = { Authorization = "Bearer ${HV_NTFY_TOKEN}" }\n')
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=hooks)
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 1
    [d] = receiver.deliveries
    assert d.path == "/" and d.headers["authorization"] == "Bearer tk_abc"
    url = ("https://www.icmpd.org/news-centre/news-detail/press-release-germany-joins-the-european"
           "-migration-organisation-icmpd/")
    assert d.body == {
        "topic": "icmpd-news", "title": f"Press Release: {GERMANY}", "priority": 3,
        "tags": ["press-release"], "click": url,
        "message": "2020-05-20 09:41 CEST · icmpd-rss · rules: press-release\n" + url
                   + "\nGermany becomes the 18th Member State of the International Centre for"
                     " Migration Policy Development..."}


def test_an_ntfy_message_stays_under_what_ntfy_takes_as_text():
    from harvester.notify.render import NTFY_LIMIT, ntfy_message

    one = ntfy_message([_chat("Ünïcode", summary="€" * 3000)], False, "t")  # 3 bytes each
    assert len(one["message"].encode()) <= NTFY_LIMIT and one["message"].endswith("€…")
    assert "click" not in one  # no http(s) link to open
    many = [_chat(f"Item {i}", summary="word " * 100) for i in range(30)]
    digest = ntfy_message(many, True, "t")
    assert digest["title"] == "harvester: 30 notifications (30 new items)"
    assert len(digest["message"].encode()) <= NTFY_LIMIT
    shown = digest["message"].count("\n\nItem ") + 1
    assert 0 < shown < 30 and digest["message"].startswith("Item 0\nnews\nword word")
    assert digest["message"].endswith(
        f"\n\n… and {30 - shown} more notifications (harvester outbox lists them)")
    alert = ntfy_message([_message("source.failing", failures=3, error="HTTP 500")], False, "t")
    assert (alert["title"], alert["priority"], alert["tags"], alert["message"]) == (
        "Source failing: icmpd-rss (3 polls in a row)", 4, ["warning"], "error: HTTP 500")


def _chat(title: str, **item: object) -> Message:
    return Message(id="n1", notifier="chat", event="item.new", source="news",
                   created_at="2020-05-20T07:41:00Z", item={"title": title, **item})


@pytest.mark.parametrize(("style", "expected"), [
    ("slack", "*&lt;!channel&gt; Fish &amp; Chips &lt;https://evil.example|click&gt;*"),
    ("discord", "**\\@everyone \\*\\*Fish\\*\\* & Chips \\[click\\](https://evil.example)**"),
])
def test_chat_text_escapes_feed_words_for_the_service(style, expected):
    from harvester.notify.render import chat_text

    title = ("<!channel> Fish & Chips <https://evil.example|click>" if style == "slack"
             else "@everyone **Fish** & Chips [click](https://evil.example)")
    assert chat_text([_chat(title)], False, style).splitlines()[0] == expected


@pytest.mark.parametrize(("style", "italic", "amp"), [
    ("slack", "_", "&amp;"), ("discord", "*", "&")])
def test_a_chat_digest_ends_between_items_saying_how_many_more(style, italic, amp):
    """Past what the service takes, a digest shows whole items and then how many more
    there were, as the Telegram, ntfy, Teams and Matrix messages do: cut anywhere, it ended
    inside an item with "&a…", and the reader never learnt that 23 items were left out."""
    from harvester.notify.render import CHAT_LIMITS, chat_text

    many = [_chat(f"Item {i}", summary="word & " * 60 + "end",
                  url=f"https://www.icmpd.org/n?id={i}&lang=en") for i in range(30)]
    text = chat_text(many, True, style)
    assert len(text) <= CHAT_LIMITS[style]
    assert text.startswith("harvester: 30 notifications (30 new items)\n\n")
    blocks = text.split("\n\n")
    shown = len(blocks) - 2
    assert 0 < shown < 30
    assert blocks[-1] == (f"{italic}… and {30 - shown} more notifications (harvester outbox"
                          f" lists them){italic}")
    assert blocks[-2].endswith(f"word {amp} end")  # the last item shown is whole
    assert f"https://www.icmpd.org/n?id={shown - 1}{amp}lang=en" in blocks[-2]


@pytest.mark.parametrize("style", ["slack", "discord", "telegram"])
def test_a_chat_message_too_long_alone_is_cut_where_no_markup_breaks(style):
    """One item longer than a message alone: its summary is cut on a whole character (no
    "&am…", no lone Discord backslash), and a link too long for the message is left out
    rather than cut into a link elsewhere (in Telegram a cut tag had the message refused)."""
    from harvester.notify.render import CHAT_LIMITS, TELEGRAM_LIMIT, chat_text, telegram_message

    def text_of(m: Message) -> str:
        return (telegram_message([m], False, 1)["text"] if style == "telegram"
                else chat_text([m], False, style))

    limit = TELEGRAM_LIMIT if style == "telegram" else CHAT_LIMITS[style]
    for n in range(7):  # every place the cut can fall within "&amp;" or "\\*"
        long_one = _chat("Long", summary="x" * n + "a & b * " * 2000)
        text = text_of(long_one)
        assert len(text) <= limit and text.endswith("…")
        if style == "discord":  # no escape left half-written
            assert not re.search(r"(?<!\\)(\\\\)*\\…$", text)
        else:
            assert not re.search(r"&[#a-z0-9]*…$", text)
    far = "https://www.icmpd.org/news/" + "a" * 3000
    text = text_of(_chat("Far & wide", url=far, summary="The words."))
    assert "www.icmpd.org" not in text and text.endswith("The words.")
    wide = text_of(_chat("&" * 500, category="<" * 200, summary="The words."))
    assert len(wide) <= limit and wide.endswith("The words.")
    if style == "telegram":  # the headline's bold is closed, so Telegram reads the message
        _assert_balanced(wide)
        _assert_balanced(text)


@pytest.mark.parametrize(("failures", "expected"), [
    (1, "Source failing: icmpd-rss (1 poll in a row)"),
    (3, "Source failing: icmpd-rss (3 polls in a row)"),
])
def test_a_failing_source_headline_counts_in_words(failures, expected):
    assert _message("source.failing", failures=failures).headline() == expected


def test_flood_guard_sends_one_digest(server, icmpd_a, config_for, store, smtp):
    notifier = email_notifier(smtp.port, max_per_run=2).replace(
        'rules = ["press-release", "project-launch"]', "rules = []")
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=notifier)
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert report.sent == 3
    [msg] = smtp.messages
    assert msg["Subject"] == "harvester: 3 notifications (3 new items)"
    text = msg.get_body(("plain",)).get_content()
    assert text.count("== ") == 3 and GERMANY in text
    assert {r["status"] for r in store.outbox()} == {"sent"}


BORDER_GUARDS = "Project News: Ukrainian border guards and customs officers optimise operations" \
                " with support by the EU"
KYIV = "On 7 May 2020 in Kyiv, ICMPD organized a kick-off meeting on business processes" \
       " analysis and..."


def test_an_edits_notification_says_what_that_edit_changed(server, icmpd_a, config_for, store,
                                                           smtp, receiver):
    """Email and webhook, for two edits of one item made before either was delivered: each
    message tells its own edit, not the item as it is now."""
    edits = email_notifier(smtp.port, on=["changed"]).replace(
        'rules = ["press-release", "project-launch"]', "rules = []")
    edits += webhook_notifier(receiver.url, rules="[]", extra='on = ["changed"]\n')
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=edits)
    two_polls(server, config, store)  # the first edit: "7 of May" → "7 May"
    again = feed_bytes("icmpd-2020-05-b.rss").replace(b"On 7 May 2020 in Kyiv,",
                                                      b"On 7 May 2020 in Kyiv (Ukraine),")
    server.route("/rss", Response(again))
    later = NOW + timedelta(minutes=1)  # queued after the first edit's: delivered after
    [report] = poll_sources(config, store, clock=lambda: later)
    assert (report.changed, report.queued) == (1, 2)
    assert deliver(config, store, later).sent == 4

    texts = [m.get_body(("plain",)).get_content() for m in smtp.messages]
    assert [m["Subject"] for m in smtp.messages] == [f"Updated: {BORDER_GUARDS}"] * 2
    # when the article is dated, and when each edit was seen
    assert [t.splitlines()[1] for t in texts] == [
        f"   2020-05-13 12:31 CEST · updated 2020-05-28 {at} CEST · icmpd-rss · rules: "
        "project-launch" for at in ("10:00", "10:01")]
    assert texts[0].splitlines()[4:] == [
        "   summary changed:", *(f"     {d}" for d in KYIV_WORDS)]
    assert texts[1].splitlines()[4:] == [
        "   summary changed:",
        "     On 7 May 2020 in [-Kyiv,-] {+Kyiv (Ukraine),+} ICMPD organized a kick-off meeting"
        " on …"]
    html = smtp.messages[1].get_body(("html",)).get_content()
    assert ('<p><b>summary changed</b></p>\r\n<p>On 7 May 2020 in <del style="color:#a00">Kyiv,'
            '</del> <ins style="color:#070">Kyiv (Ukraine),</ins> ICMPD organized a kick-off '
            "meeting on …</p>") in html

    first, second = (d.body["data"] for d in receiver.deliveries)
    assert first["changes"] == [{
        "field": "summary",
        "before": KYIV_BEFORE,
        "after": KYIV,
        "diff": KYIV_DIFF,
        "words": [[["=", "On 7"], ["-", "of"], ["=", "May 2020 in Kyiv, ICMPD organized …"]]]}]
    assert (second["changes"][0]["before"], second["changes"][0]["after"]) == (
        KYIV, KYIV.replace("Kyiv,", "Kyiv (Ukraine),"))
    # the item itself is as it is now, in both
    assert first["item"]["summary"] == second["item"]["summary"] == second["changes"][0]["after"]


def test_an_edits_email_threads_under_its_items_news_and_no_autoreply_answers(
        server, icmpd_a, config_for, store, smtp):
    """Every item on every event, from a first poll that notifies everything: the edit's
    email replies to the one that brought the item, and each carries the prefix a mail
    filter sorts by and the headers that keep out-of-office replies away."""
    notifier = email_notifier(smtp.port, on=["new", "changed"], max_per_run=50,
                              subject_prefix="[ICMPD]").replace(
        'rules = ["press-release", "project-launch"]', "rules = []")
    config = config_for(feed_source("icmpd-rss", icmpd_a, first_run="all"), notifiers=notifier)
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 11  # 7 items, then 3 new and 1 edit
    by_subject = {m["Subject"]: m for m in smtp.messages}
    assert all(subj.startswith("[ICMPD] ") for subj in by_subject)
    news = by_subject[f"[ICMPD] {BORDER_GUARDS}"]
    edit = by_subject[f"[ICMPD] Updated: {BORDER_GUARDS}"]
    assert edit["In-Reply-To"] == edit["References"] == news["Message-ID"]
    assert news["In-Reply-To"] is None and news["References"] is None
    assert {(m["Auto-Submitted"], m["X-Auto-Response-Suppress"]) for m in smtp.messages} == {
        ("auto-generated", "OOF, AutoReply")}


def test_a_recovery_email_threads_under_the_failure_alert(server, icmpd_a, config_for, store,
                                                          smtp):
    ops = email_notifier(smtp.port, events=["source.failing", "source.recovered"]).replace(
        'rules = ["press-release", "project-launch"]\n', "")
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=ops)
    list(poll_sources(config, store, clock=lambda: NOW))
    server.route("/rss", Response(b"oops", status=500, content_type="text/plain"))
    for i in range(3):
        list(poll_sources(config, store, clock=lambda i=i: NOW + timedelta(minutes=i)))
    # the third failure's log row counts the alert it queued, as `log --json` shows it
    assert store.conn.execute("SELECT queued FROM fetch_log WHERE status = 'error'"
                              " ORDER BY id").fetchall() == [(0,), (0,), (1,)]
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    list(poll_sources(config, store, clock=lambda: NOW + timedelta(minutes=9)))
    assert deliver(config, store, NOW + timedelta(minutes=10)).sent == 2
    failing, recovered = smtp.messages
    assert (failing["Subject"], recovered["Subject"]) == (
        "Source failing: icmpd-rss (3 polls in a row)", "Source recovered: icmpd-rss")
    assert recovered["In-Reply-To"] == recovered["References"] == failing["Message-ID"]


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv("HV_HOOK_SECRET", "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    r = Receiver(secret=b"secret-key-for-tests")
    yield r
    r.stop()


def test_a_receivers_answer_is_kept_and_shown_as_text_not_as_commands(
        server, icmpd_a, config_for, store, receiver):
    """A receiver's answer is the receiver's to write: an escape sequence in it would set
    the title or clipboard of the terminal `outbox` and `notify-test` print it on. The
    row keeps, and they show, its text."""
    receiver.answers = [(400, {}, b"\x1b]52;c;cHduZWQ=\x07bad \x1b[2Jpayload\r\nsee docs")] * 2
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(receiver.url))
    two_polls(server, config, store)
    assert deliver(config, store, NOW, rand=lambda: 0.5).dead == 1
    [row] = store.outbox()
    assert row["response"] == row["last_error"] == "HTTP 400 bad payload see docs"
    shown = run_cli("--config", str(config.path), "outbox")
    assert "    last error: HTTP 400 bad payload see docs\n" in shown.stdout
    tested = run_cli("--config", str(config.path), "notify-test", "hook")
    assert (tested.returncode, tested.stderr) == (
        1, "harvester: error: hook: dead: HTTP 400 bad payload see docs\n")


def test_webhook_signed_and_retried_until_it_lands(server, icmpd_a, config_for, store,
                                                    receiver):
    receiver.answers = [(500, {})]
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(receiver.url))
    two_polls(server, config, store)
    first = deliver(config, store, NOW, rand=lambda: 0.5)
    assert (first.sent, first.retrying) == (0, 1)
    [row] = store.outbox()
    assert row["response"].startswith("HTTP 500")
    second = deliver(config, store, NOW + timedelta(seconds=31), rand=lambda: 0.5)
    assert second.sent == 1
    a, b = receiver.deliveries
    assert a.valid and b.valid and a.id == b.id == row["id"]  # the same id on the retry
    body = b.body
    assert body["type"] == "item.new" and body["data"]["source"] == "icmpd-rss"
    assert body["data"]["rules"] == ["press-release"]
    assert body["data"]["item"]["title"] == GERMANY
    assert body["data"]["item"]["category"] == "Press Release"
    assert body["data"]["item"]["published"] == "2020-05-20T07:41:00Z"
    assert set(body["data"]["item"]) == {"id", "title", "category", "url", "published",
                                         "summary", "first_seen"}


def test_a_polls_news_arrives_oldest_first(server, icmpd_a, config_for, store, receiver):
    """One message per item, in the order the source published them: a chat channel
    reads top to bottom, so the newest lands last. Each poll's rows go in turn."""
    config = config_for(feed_source("icmpd-rss", icmpd_a, first_run="all"),
                        notifiers=webhook_notifier(receiver.url, rules="[]"))
    list(poll_sources(config, store, clock=lambda: NOW))
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    list(poll_sources(config, store, clock=lambda: NOW + timedelta(minutes=30)))
    assert deliver(config, store, NOW + timedelta(minutes=31)).sent == 10  # 7, then 3 new
    sent = [d.body["data"]["item"]["published"] for d in receiver.deliveries]
    first = sorted(i["published"] for i in json.loads(
        (FEEDS / "icmpd-2020-05-a.expected.json").read_text("utf-8")))
    assert sent[:7] == first
    assert sent[7:] == ["2020-05-18T11:09:53Z", "2020-05-20T07:41:00Z", "2020-05-27T09:06:39Z"]
    assert [r["item_id"] for r in store.outbox()] == [
        d.body["data"]["item"]["id"] for d in receiver.deliveries]


def test_a_webhooks_own_headers_reach_the_receiver_beside_its_signature(
        server, icmpd_a, config_for, store, receiver, monkeypatch):
    monkeypatch.setenv("HV_HOOK_TOKEN", "t0ken")
    hooks = (webhook_notifier(receiver.url + "/token", name="token", extra=(
                 'headers = { Authorization = "Bearer ${HV_HOOK_TOKEN}", '
                 'user-agent = "newsroom-bot/2" }\n'))
             + webhook_notifier(receiver.url + "/plain", name="plain"))
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=hooks)
    two_polls(server, config, store)
    assert deliver(config, store, NOW).sent == 2
    got = {d.path.rpartition("/")[2]: d for d in receiver.deliveries}
    assert got["token"].valid and got["plain"].valid  # signed as before
    assert got["token"].headers["authorization"] == "Bearer t0ken"
    assert got["token"].headers["user-agent"] == "newsroom-bot/2"
    assert got["token"].headers["content-type"] == "application/json"
    assert "authorization" not in got["plain"].headers
    assert got["plain"].headers["user-agent"] == "harvester-webhook/0.1"
    assert got["token"].body == got["plain"].body | {"timestamp": got["token"].body["timestamp"]}


def test_a_failing_receiver_gets_one_attempt_a_pass_and_the_rest_wait_untried(
        server, icmpd_a, config_for, store, receiver):
    """Three messages to a receiver that answers 503: one request says it is down; the
    other two are not sent into it (nor would they each wait out a hung one's timeout)."""
    receiver.answers = [(503, {})] * 3
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        notifiers=webhook_notifier(receiver.url, rules="[]"))
    two_polls(server, config, store)
    first = deliver(config, store, NOW, rand=lambda: 0.5)
    assert (first.sent, first.retrying, first.dead) == (0, 3, 0)
    assert first.errors == ['hook: HTTP 503 {"error": "no"} (2 more messages held for the '
                            'next pass)']
    assert len(receiver.deliveries) == 1
    tried = receiver.deliveries[0].id
    rows = {r["id"]: r for r in store.outbox()}
    assert {i: (r["status"], r["attempts"]) for i, r in rows.items()} == {
        i: ("pending", 1 if i == tried else 0) for i in rows}
    receiver.answers = []  # back up: the two untried go at once, the tried one after its backoff
    assert deliver(config, store, NOW + timedelta(seconds=1)).sent == 2
    assert deliver(config, store, NOW + timedelta(seconds=31)).sent == 1
    assert {r["status"] for r in store.outbox()} == {"sent"}
    assert [d.id for d in receiver.deliveries].count(tried) == 2


def _endless():
    while True:
        yield b"x" * 1024


def _dripping():
    while True:
        time.sleep(0.2)
        yield b"."


@pytest.mark.parametrize(("answer", "shown"), [
    # a URL that is no webhook and streams without end: 64 KB of it are read, no more
    ((200, {"Content-Type": "text/plain"}, _endless), "HTTP 200 " + "x" * 200),
    # one that drips: what came until the notifier's timeout (1 s) is the answer
    ((200, {"Content-Type": "text/plain"}, _dripping), "HTTP 200 ....."),
    ((503, {"Content-Type": "text/plain; charset=no-such-codec"}, lambda: iter([b"busy"])),
     "HTTP 503 busy"),
])
def test_a_receivers_answer_is_read_only_so_far_and_so_long(server, icmpd_a, config_for, store,
                                                            receiver, answer, shown):
    """Each other message of the pass waits behind this one: an answer that never ends must
    not hold them, nor fill the memory."""
    receiver.answers = [answer]
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        notifiers=webhook_notifier(receiver.url, extra="timeout = 1\n"))
    two_polls(server, config, store)
    done: list = []
    # in a thread of its own: a pass that never returns fails the test instead of hanging it
    passing = threading.Thread(target=lambda: done.append(deliver(config, store, NOW,
                                                                  rand=lambda: 0.5)),
                               daemon=True)
    passing.start()
    passing.join(30)
    assert done, "the delivery pass is still reading the answer"
    [report] = done
    assert (report.sent, report.retrying) == ((1, 0) if answer[0] == 200 else (0, 1))
    response = store.outbox()[0]["response"]
    assert response.startswith(shown) and len(response) <= len("HTTP 200 ") + 200, response


def test_webhook_429_honours_retry_after_and_410_disables(server, icmpd_a, config_for, store,
                                                          receiver):
    receiver.answers = [(429, {"Retry-After": "120"})]
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(receiver.url))
    two_polls(server, config, store)
    deliver(config, store, NOW, rand=lambda: 0.5)
    assert store.outbox()[0]["next_attempt_at"] == "2020-05-28T08:02:00Z"
    receiver.answers = [(410, {})]
    gone = deliver(config, store, NOW + timedelta(seconds=121))
    assert gone.disabled == ["hook"] and gone.sent == 0
    assert store.disabled_notifiers() == {"hook": f"{receiver.url} answered 410 Gone: notifier disabled"}
    assert store.outbox()[0]["status"] == "pending"  # kept: nothing is dropped
    assert deliver(config, store, NOW + timedelta(hours=1)).sent == 0  # disabled: no attempt
    assert len(receiver.deliveries) == 2


def test_a_webhook_host_that_does_not_resolve_is_named_and_retried(
        server, icmpd_a, config_for, store, no_public_dns, monkeypatch):
    monkeypatch.setenv("HV_HOOK_SECRET", "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    config = config_for(feed_source("icmpd-rss", icmpd_a),
                        notifiers=webhook_notifier("https://hooks.example/T0001"))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert (report.sent, report.retrying, report.errors) == (0, 1, [
        "hook: POST https://hooks.example/T0001: cannot resolve hooks.example: Name or service "
        "not known"])


def test_an_smtp_host_that_does_not_resolve_is_named_and_retried(
        server, icmpd_a, config_for, store, no_public_dns):
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=(
        '\n[[notifiers]]\nname = "team"\nkind = "email"\nrules = []\nhost = "smtp.example"\n'
        'from = "harvester@example.org"\nto = ["news-watch@example.org"]\n'))
    two_polls(server, config, store)
    report = deliver(config, store, NOW)
    assert (report.sent, report.retrying, report.errors) == (0, 3, [
        "team: SMTP smtp.example:587: cannot resolve smtp.example: Name or service not known"
        " (2 more messages held for the next pass)"])


@pytest.mark.parametrize(("secret", "problem"), [
    ("whsec_abc", "a whsec_ secret is base64 after its prefix (Incorrect padding)"),
    ("whsec_c2Vj!!", "a whsec_ secret is base64 after its prefix (Only base64 data is allowed)"),
    ("whsec_", "it is empty"),
    ("", "it is empty"),
])
def test_a_signing_secret_that_is_none_holds_the_rows_and_says_why(
        server, icmpd_a, config_for, store, receiver, monkeypatch, secret, problem):
    """A mistyped whsec_ secret crashed the pass; an empty one signed with an empty key,
    a signature anyone can make. Both keep the rows waiting, said, until it is fixed."""
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(receiver.url))
    two_polls(server, config, store)
    monkeypatch.setenv("HV_HOOK_SECRET", secret)
    report = deliver(config, store, NOW)
    assert (report.sent, report.retrying, report.errors) == (0, 1, [
        f"hook: environment variable HV_HOOK_SECRET is no signing secret: {problem}"])
    assert receiver.deliveries == []
    monkeypatch.setenv("HV_HOOK_SECRET", "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    report = deliver(config, store, NOW + timedelta(hours=1))
    assert report.sent == 1 and [d.valid for d in receiver.deliveries] == [True]


def test_a_source_silent_past_silent_after_is_told_once_a_silence(
        server, icmpd_a, config_for, store, receiver):
    """A feed that stopped updating answers 200 or 304 as ever (the ICMPD feed's last item
    is of 2020): with `silent_after`, the operators hear once when no new item has come
    for that long, and once more only after news came and stopped again."""
    config = config_for(
        feed_source("icmpd-rss", icmpd_a, silent_after="30d"),
        notifiers=webhook_notifier(receiver.url, rules="[]").replace(
            'rules = []', 'events = ["source.silent"]'))
    list(poll_sources(config, store, clock=lambda: NOW))  # the baseline
    for days in (29, 31, 32):  # nothing new: 304s
        list(poll_sources(config, store, clock=lambda days=days: NOW + timedelta(days=days)))
    [row] = store.outbox()
    assert (row["event"], row["notifier"], row["ref"]) == (
        "source.silent", "hook", "2020-05-28T08:00:00Z")
    assert deliver(config, store, NOW + timedelta(days=32)).sent == 1
    [d] = receiver.deliveries
    assert d.valid and d.body["type"] == "source.silent"
    assert d.body["data"] == {"source": "icmpd-rss", "url": icmpd_a, "days": 31,
                              "since": "2020-05-28T08:00:00Z"}
    msg = message_from_row({**row, "data": row["data"]})
    assert msg.headline() == "Source silent: icmpd-rss (no new item for 31 days)"
    # news, then silence again: a second alert, of the new silence
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    list(poll_sources(config, store, clock=lambda: NOW + timedelta(days=40)))
    list(poll_sources(config, store, clock=lambda: NOW + timedelta(days=69)))
    assert [r["ref"] for r in store.outbox()] == ["2020-05-28T08:00:00Z"]
    list(poll_sources(config, store, clock=lambda: NOW + timedelta(days=71)))
    assert [r["ref"] for r in store.outbox()] == ["2020-05-28T08:00:00Z",
                                                  "2020-07-07T08:00:00Z"]



def test_check_says_silent_after_and_a_silence_nobody_can_hear(tmp_path):
    ops = '\n[[notifiers]]\nname = "ops"\nkind = "console"\nevents = ["source.silent"]\n'
    cfg = make_config(tmp_path, HTTP + feed_source("a", "https://example.org/rss") + ops)
    r = run_cli("--config", str(cfg), "check")
    assert r.returncode == 0
    assert r.stderr == ("  warning: no source sets silent_after, so source.silent never comes "
                        '(silent_after = "30d" in [defaults] or a source)\n')
    cfg.write_text(cfg.read_text().replace('timezone = "Europe/Vienna"\n',
                                           'timezone = "Europe/Vienna"\nsilent_after = "30d"\n'))
    r = run_cli("--config", str(cfg), "check")
    assert (r.returncode, r.stderr) == (0, "")
    assert ("source a: feed https://example.org/rss every 30m, first run baseline, silent "
            "after 30d") in r.stdout


def test_rows_of_a_renamed_notifier_are_said_and_moved_to_its_new_name(
        server, icmpd_a, tmp_path, receiver):
    """A notifier renamed (or removed) in the config leaves its waiting rows behind, sent
    by nobody: every run says so, `outbox` names it, and `outbox move` sends them through
    the notifier named now, under that notifier's own ids."""
    receiver.answers = [(503, {})]
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                      + webhook_notifier(receiver.url))
    assert run_cli("--config", str(cfg), "once").returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", str(cfg), "once")
    assert "delivery: 0 sent, 1 waiting to retry, 0 dead" in r.stderr
    cfg.write_text(cfg.read_text().replace('name = "hook"', 'name = "team-hook"'))
    note = ("1 notification waits for notifier hook, which is no longer configured "
            "(`harvester outbox move hook NEW` sends it through another, `harvester outbox "
            "drop hook` drops it)")
    r = run_cli("--config", str(cfg), "once")
    assert r.returncode == 0 and r.stderr.splitlines()[-1] == f"delivery: {note}"
    r = run_cli("--config", str(cfg), "outbox")
    assert r.stderr == f"{note}\n"
    [old] = store_rows(cfg)
    r = run_cli("--config", str(cfg), "outbox", "move", "hook", "nope")
    assert (r.returncode, r.stderr.strip()) == (
        2, "harvester: error: no notifier named 'nope' (notifiers: team-hook)")
    r = run_cli("--config", str(cfg), "outbox", "move", "team-hook", "team-hook")
    assert (r.returncode, r.stdout) == (2, "")  # (it would have dropped them as its own)
    assert "OLD and NEW name the same notifier" in r.stderr
    r = run_cli("--config", str(cfg), "outbox", "move", "hook", "team-hook")
    assert (r.returncode, r.stdout.strip()) == (0, "1 row moved from hook to team-hook, due now")
    [row] = store_rows(cfg)
    assert (row["notifier"], row["status"], row["attempts"], row["item_id"]) == (
        "team-hook", "pending", 0, old["item_id"])
    assert row["id"] == notification_id("team-hook", old["item_id"], "item.new")
    r = run_cli("--config", str(cfg), "once")
    assert "delivery: 1 sent, 0 waiting to retry, 0 dead" in r.stderr and "no longer" not in r.stderr
    assert [d.headers["webhook-id"] for d in receiver.deliveries] == [old["id"], row["id"]]
    r = run_cli("--config", str(cfg), "outbox", "move", "hook", "team-hook")
    assert (r.returncode, r.stdout.strip()) == (0, "0 rows moved from hook to team-hook, due now")
    # a notifier removed for good: what waits for it is dropped; what was sent stays
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss").replace(
        b"</channel>", NEW_ITEM + b"</channel>")))
    receiver.answers = [(503, {})]
    assert run_cli("--config", str(cfg), "once").returncode == 0
    cfg.write_text(cfg.read_text().split("\n[[notifiers]]")[0])
    r = run_cli("--config", str(cfg), "outbox", "drop", "team-hook")
    assert (r.returncode, r.stdout.strip()) == (0, "1 row dropped (1 pending, 0 dead)")
    assert [(x["notifier"], x["status"]) for x in store_rows(cfg)] == [("team-hook", "sent")]
    r = run_cli("--config", str(cfg), "once")
    assert (r.returncode, r.stderr.count("no longer configured")) == (0, 0)


NEW_ITEM = (b"<item><title>Press Release: A new press release</title>"
            b"<link>https://www.icmpd.org/news-centre/news-detail/a-new-one/</link>"
            b"<pubDate>Fri, 29 May 2020 09:00:00 +0200</pubDate></item>")


def store_rows(cfg) -> list[dict]:
    r = run_cli("--config", str(cfg), "outbox", "--json")
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_a_webhook_receiver_that_moved_says_where_to(server, icmpd_a, tmp_path, receiver):
    """A redirect is not followed (the POST and its signature would go where the config
    never said), and the dead row says where the receiver says it went."""
    receiver.answers = [(308, {"Location": "https://hooks.example.org/v2/harvester"}, b"")]
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                      + webhook_notifier(receiver.url))
    assert run_cli("--config", str(cfg), "once").returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", str(cfg), "once")
    assert r.returncode == 1
    assert ("  hook: HTTP 308: the receiver moved to https://hooks.example.org/v2/harvester "
            "(not followed): write that as the notifier's url") in r.stderr.splitlines()
    assert len(receiver.deliveries) == 1


def test_webhook_4xx_is_dead_and_once_exits_1(server, icmpd_a, tmp_path, receiver):
    receiver.answers = [(400, {}), (400, {})]
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a)
                      + webhook_notifier(receiver.url))
    env = {"HV_HOOK_SECRET": os.environ["HV_HOOK_SECRET"]}
    assert run_cli("--config", str(cfg), "once", env=env).returncode == 0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", str(cfg), "once", env=env)
    assert r.returncode == 1
    assert "delivery: 0 sent, 0 waiting to retry, 1 dead" in r.stderr
    assert 'hook: HTTP 400 {"error": "no"}' in r.stderr
    r = run_cli("--config", str(cfg), "outbox", "--status", "dead", "--json", env=env)
    [row] = [json.loads(x) for x in r.stdout.splitlines()]
    assert row["status"] == "dead" and row["response"] == 'HTTP 400 {"error": "no"}'
    r = run_cli("--config", str(cfg), "outbox", "--status", "dead", env=env)  # as read by eye
    assert (r.returncode, r.stderr, r.stdout.splitlines()) == (0, "", [
        f"{row['id']}  dead    hook         item.new         {row['item_id']}  attempts 1  "
        f"{row['next_attempt_at']}", '    last error: HTTP 400 {"error": "no"}'])
    r = run_cli("--config", str(cfg), "outbox", "retry", "--dead", env=env)
    assert r.stdout.strip() == "1 row re-queued"
    # naming rows: one already waiting is said to be, a mistyped id is an error
    r = run_cli("--config", str(cfg), "outbox", "retry", row["id"], "n_typo", "n_typo2", env=env)
    assert (r.returncode, r.stdout) == (1, "0 rows re-queued\n")
    assert r.stderr.splitlines() == [
        f"already pending: {row['id']}",
        "harvester: error: no outbox rows with ids n_typo, n_typo2 (`harvester outbox` lists them)"]
    r = run_cli("--config", str(cfg), "once", env=env)
    assert r.returncode == 1  # the second 400: dead again
    r = run_cli("--config", str(cfg), "once", env=env)
    assert r.returncode == 0 and "delivery" not in r.stderr  # nothing due: quiet


def test_console_notifier_prints_a_block_per_item(server, icmpd_a, tmp_path):
    notifier = '\n[[notifiers]]\nname = "stdout"\nkind = "console"\nrules = ["press-release"]\n'
    cfg = str(make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a) + notifier))
    assert run_cli("--config", cfg, "once").stdout == ""
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0
    assert r.stdout.splitlines()[:3] == [
        f"== Press Release: {GERMANY}",
        "   2020-05-20 09:41 CEST · icmpd-rss · rules: press-release",
        "   https://www.icmpd.org/news-centre/news-detail/press-release-germany-joins-the-european"
        "-migration-organisation-icmpd/"]
    assert "delivery: 1 sent, 0 waiting to retry, 0 dead" in r.stderr


def test_no_notification_for_baseline_unchanged_second_source_or_other_rules(
        server, icmpd_a, config_for, store, receiver):
    server.route("/copy", Response(feed_bytes("icmpd-2020-05-b.rss")))
    everything = webhook_notifier(receiver.url, name="all", rules="[]",
                                  extra='on = ["new", "changed"]\n')
    only_pr = webhook_notifier(receiver.url)
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=everything + only_pr)
    list(poll_sources(config, store, clock=lambda: NOW))
    assert store.outbox() == []  # baseline
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss")))
    list(poll_sources(config, store, clock=lambda: NOW))
    queued = sorted((r["notifier"], r["event"]) for r in store.outbox())
    assert queued == [("all", "item.changed"), ("all", "item.new"), ("all", "item.new"),
                      ("all", "item.new"), ("hook", "item.new")]
    # a second source carrying the same news: sightings, not items; nothing queued
    config2 = config_for(feed_source("icmpd-rss", icmpd_a),
                         feed_source("mirror", server.url("/copy"), first_run="all"),
                         notifiers=everything + only_pr)
    list(poll_sources(config2, store, clock=lambda: NOW))
    assert len(store.outbox()) == 5 and len(store.items()) == 10


def test_operators_hear_once_when_a_source_keeps_failing_and_when_it_recovers(
        server, icmpd_a, config_for, store, receiver):
    ops = ('\n[[notifiers]]\nname = "ops"\nkind = "webhook"\nevents = ["source.failing"]\n'
           f'url = "{receiver.url}"\nsecret_env = "HV_HOOK_SECRET"\n')
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=ops)
    list(poll_sources(config, store, clock=lambda: NOW))
    server.route("/rss", Response(b"oops", status=500, content_type="text/plain"))
    for i in range(5):
        list(poll_sources(config, store, clock=lambda i=i: NOW + timedelta(minutes=i)))
    rows = store.outbox()
    assert [(r["event"], json.loads(r["data"])["failures"]) for r in rows] == [
        ("source.failing", 3)]
    deliver(config, store, NOW + timedelta(minutes=5))
    [d] = receiver.deliveries
    assert d.valid and d.body["type"] == "source.failing"
    assert d.body["data"] == {"source": "icmpd-rss", "url": icmpd_a, "failures": 3,
                              "since": "2020-05-28T08:00:00Z",
                              "error": "HTTP 500 Internal Server Error"}
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    list(poll_sources(config, store, clock=lambda: NOW + timedelta(minutes=9)))
    assert [r["event"] for r in store.outbox()] == ["source.failing", "source.recovered"]


def test_notify_test_reports_the_answer(tmp_path, receiver):
    cfg = make_config(tmp_path, HTTP + webhook_notifier(receiver.url))
    env = {"HV_HOOK_SECRET": os.environ["HV_HOOK_SECRET"]}
    r = run_cli("--config", str(cfg), "notify-test", "hook", env=env)
    assert r.returncode == 0 and r.stdout.strip() == 'hook: sent (HTTP 200 {"ok": true})'
    assert receiver.deliveries[0].valid and receiver.deliveries[0].body["type"] == "test"
    receiver.answers = [(503, {})]
    r = run_cli("--config", str(cfg), "notify-test", "hook", env=env)
    assert r.returncode == 1 and "hook: retry: HTTP 503" in r.stderr
    r = run_cli("--config", str(cfg), "notify-test", "nope", env=env)
    assert r.returncode == 2 and "no notifier named 'nope' (notifiers: hook)" in r.stderr


def test_a_webhook_over_https_trusts_the_ca_feeds_and_email_trust(tmp_path, tls,
                                                                   monkeypatch):
    """One trust store for every channel: a private CA given in SSL_CERT_FILE (an
    organisation's, a TLS-inspecting proxy's) is trusted by webhooks as by feeds and
    email; without it, the failure says what is wrong and where the CA goes."""
    monkeypatch.setenv("HV_HOOK_SECRET", "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    receiver = Receiver(secret=b"secret-key-for-tests", tls=tls)
    try:
        cfg = make_config(tmp_path, HTTP + webhook_notifier(receiver.url))
        r = run_cli("--config", str(cfg), "notify-test", "hook")
        assert (r.returncode, r.stdout.strip()) == (0, 'hook: sent (HTTP 200 {"ok": true})')
        assert receiver.deliveries[0].valid
        monkeypatch.delenv("SSL_CERT_FILE")
        r = run_cli("--config", str(cfg), "notify-test", "hook")
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f"harvester: error: hook: retry: POST {receiver.url}: the TLS certificate of "
            "127.0.0.1 is not signed by a CA this machine trusts (unable to get local "
            "issuer certificate): a private CA (your organisation's, a TLS-inspecting "
            "proxy's) goes in SSL_CERT_FILE, a PEM file")
        assert len(receiver.deliveries) == 1
    finally:
        receiver.stop()


def test_a_webhook_url_from_the_environment_is_used_and_never_shown(
        server, icmpd_a, config_for, store, receiver, monkeypatch):
    """A Slack or Discord webhook URL is its own credential: `url = "${HOOK_URL}"` keeps it
    out of the file, and out of every error, outbox row and disabled-notifier note."""
    secret = "/services/T0001/B0002/s3cretT0ken"
    monkeypatch.setenv("HV_HOOK_URL", receiver.url + secret)
    receiver.answers = [(500, {})]
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(
        "${HV_HOOK_URL}", extra='format = "slack"\non = ["new", "changed"]\n'))
    two_polls(server, config, store)
    deliver(config, store, NOW, rand=lambda: 0.5)
    assert deliver(config, store, NOW + timedelta(seconds=31)).sent == 1
    assert [d.path for d in receiver.deliveries] == ["/hook" + secret] * 2
    monkeypatch.setenv("HV_HOOK_URL", f"http://127.0.0.1:{free_port()}{secret}")
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-b.rss").replace(
        b"Germany joins", b"Germany officially joins")))
    list(poll_sources(config, store, clock=lambda: NOW + timedelta(minutes=1)))
    down = deliver(config, store, NOW + timedelta(minutes=1))
    assert down.errors == [f"hook: POST ${{HV_HOOK_URL}}: cannot connect: [Errno "
                           f"{errno.ECONNREFUSED}] Connection refused"]
    monkeypatch.setenv("HV_HOOK_URL", receiver.url + secret)
    receiver.answers = [(410, {})]
    assert deliver(config, store, NOW + timedelta(hours=1)).disabled == ["hook"]
    assert store.disabled_notifiers() == {
        "hook": "${HV_HOOK_URL} answered 410 Gone: notifier disabled"}
    rows = json.dumps([dict(r) for r in store.outbox()])
    assert "s3cretT0ken" not in rows and "${HV_HOOK_URL}" in rows
    monkeypatch.delenv("HV_HOOK_URL")
    with pytest.raises(ConfigError) as e:
        config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier("${HV_HOOK_URL}"))
    assert str(e.value).endswith("notifiers[0].url: environment variable HV_HOOK_URL is not set")
    monkeypatch.setenv("HV_HOOK_URL", "hooks.slack.com/services/T0001/B0002/s3cretT0ken")
    with pytest.raises(ConfigError) as e:
        config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier("${HV_HOOK_URL}"))
    assert str(e.value).endswith("notifiers[0].url: expected an http:// or https:// URL, got "
                                 "'${HV_HOOK_URL}' (as the environment fills it in)")


def test_telegram_format_posts_a_bot_api_message(server, icmpd_a, config_for, store,
                                                  receiver, monkeypatch):
    """`format = "telegram"`: the Bot API's sendMessage in HTML mode, its token in the URL
    from the environment; a 429's retry_after (in Telegram's JSON, no header) is waited."""
    monkeypatch.setenv("HV_TG_TOKEN", "123456:AAbbCCdd")
    url = receiver.url.removesuffix("/hook") + "/bot${HV_TG_TOKEN}/sendMessage"
    receiver.answers = [(429, {}, b'{"ok":false,"error_code":429,"description":"Too Many '
                                  b'Requests: retry after 35","parameters":{"retry_after":35}}')]
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(
        url, extra='format = "telegram"\nchat_id = "@icmpd_news"\n'))
    two_polls(server, config, store)
    deliver(config, store, NOW, rand=lambda: 0.5)
    assert store.outbox()[0]["next_attempt_at"] == "2020-05-28T08:00:35Z"
    assert deliver(config, store, NOW + timedelta(seconds=35)).sent == 1
    sent = receiver.deliveries[-1]
    assert sent.path == "/bot123456:AAbbCCdd/sendMessage"
    link = ("https://www.icmpd.org/news-centre/news-detail/press-release-germany-joins-the-"
            "european-migration-organisation-icmpd/")
    assert sent.body == {
        "chat_id": "@icmpd_news", "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
        "text": f"<b>Press Release: {GERMANY}</b>\n"
                "2020-05-20 09:41 CEST · icmpd-rss · rules: press-release\n"
                f'<a href="{link}">{link}</a>\n'
                "Germany becomes the 18th Member State of the International Centre for Migration"
                " Policy Development..."}
    assert "AAbbCCdd" not in json.dumps([dict(r) for r in store.outbox()])


def _assert_balanced(text: str) -> None:
    """Every tag Telegram would read is closed where it opens: else it refuses the message."""
    from html.parser import HTMLParser

    class Balanced(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.open.append(tag)

        def handle_endtag(self, tag):
            assert self.open.pop() == tag

    checker = Balanced()
    checker.feed(text)
    checker.close()
    assert checker.open == []


def test_a_telegram_digest_escapes_feed_words_and_ends_between_lines():
    """Telegram refuses a whole message whose HTML it cannot read: feed words are escaped,
    and a digest past its limit stops between lines, saying how many more there were."""
    from dataclasses import replace

    from harvester.notify.render import TELEGRAM_LIMIT, telegram_message

    tricky = replace(_message("item.new"), item={"title": "<b>Kick-off</b> & <a href=x>y",
                                                  "summary": "1 < 2 &amp; 3"})
    assert telegram_message([tricky], False, 1)["text"].split("\n") == [
        "<b>&lt;b&gt;Kick-off&lt;/b&gt; &amp; &lt;a href=x&gt;y</b>", "icmpd-rss",
        "1 &lt; 2 &amp;amp; 3"]
    many = [replace(_message("item.new"), id=f"n{i}", item={
        "title": f"Item {i}", "summary": "word & " * 120,
        "url": f"https://www.icmpd.org/n/{i}"}) for i in range(30)]
    text = telegram_message(many, True, 1)["text"]
    assert len(text) <= TELEGRAM_LIMIT
    shown = text.count("<b>Item ")
    assert 0 < shown < 30
    assert text.endswith(f"<i>… and {30 - shown} more notifications (harvester outbox lists "
                         "them)</i>")

    _assert_balanced(text)
    long_one = replace(many[0], item={"title": "Long", "summary": "word & " * 2000})
    alone = telegram_message([long_one], False, 1)["text"]
    assert len(alone) <= TELEGRAM_LIMIT and alone.endswith(" word &amp; word …")
    assert not re.search(r"&[#a-z0-9]*…$", alone)  # no entity cut in two
    from harvester.edits import field_changes

    rewrite = field_changes({"summary": " ".join(f"old{i} &" for i in range(400))},
                            {"summary": " ".join(f"new{i} &" for i in range(400))},
                            ("summary",), max_lines=40)
    edited = replace(long_one, event="item.changed", changes=rewrite)
    alone = telegram_message([edited], False, 1)["text"]
    assert len(alone) <= TELEGRAM_LIMIT and alone.endswith("\n…")  # lines kept whole
    assert alone.split("\n")[-2].startswith("    +new") or alone.split("\n")[-2].startswith(
        "    -old")


@pytest.mark.parametrize(("extra", "url", "error"), [
    ('format = "telegram"\n', "https://api.telegram.org/botT/sendMessage",
     'notifiers[0].chat_id: format = "telegram" needs the chat to post to: its id '
     '(-1001234567890) or "@channelname"'),
    ('format = "telegram"\nchat_id = 1\n', "https://api.telegram.org/botT",
     'notifiers[0].url: a Telegram URL is its bot\'s sendMessage method, e.g. '
     '"https://api.telegram.org/bot${TELEGRAM_TOKEN}/sendMessage"; got '
     "'https://api.telegram.org/botT'"),
    ('chat_id = 1\n', "https://hooks.example.org/x",
     'notifiers[0].chat_id: only format = "telegram" takes a chat_id'),
    ('format = "matrix"\nheaders = { Authorization = "Bearer t" }\n',
     "https://m.example.org/_matrix/client/v3/rooms/!r:example.org",
     "notifiers[0].url: a Matrix URL is its room's send endpoint, e.g. "
     '"https://matrix.example.org/_matrix/client/v3/rooms/!roomid:example.org/send/'
     "m.room.message\"; got 'https://m.example.org/_matrix/client/v3/rooms/!r:example.org'"),
    ('format = "matrix"\n',
     "https://m.example.org/_matrix/client/v3/rooms/!r:example.org/send/m.room.message",
     'notifiers[0].headers: format = "matrix" needs the bot account\'s access token: '
     'headers = { Authorization = "Bearer ${MATRIX_TOKEN}" }'),
])
def test_a_telegram_or_matrix_notifier_is_checked_when_the_config_loads(config_for, icmpd_a,
                                                                        extra, url, error):
    with pytest.raises(ConfigError) as e:
        config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(url, extra=extra))
    assert str(e.value).endswith(error)


def test_matrix_format_puts_a_room_message_once_under_its_id(server, icmpd_a, config_for,
                                                              store, receiver, monkeypatch):
    """`format = "matrix"`: an m.room.message PUT under the notification's id, so a resend
    after a lost answer is the same event to the homeserver; its 429 retry_after_ms is
    waited out; the bot's token goes in `headers`, from the environment."""
    monkeypatch.setenv("HV_MATRIX_TOKEN", "syt_bot_token")
    room = receiver.url.removesuffix("/hook") + (
        "/_matrix/client/v3/rooms/!news:example.org/send/m.room.message")
    receiver.answers = [(429, {}, b'{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":44500}')]
    config = config_for(feed_source("icmpd-rss", icmpd_a), notifiers=webhook_notifier(
        room, rules="[]", extra='format = "matrix"\non = ["new", "changed"]\n'
                                'headers = { Authorization = "Bearer ${HV_MATRIX_TOKEN}" }\n'))
    two_polls(server, config, store)
    deliver(config, store, NOW, rand=lambda: 0.5)
    assert {r["next_attempt_at"] for r in store.outbox() if r["attempts"]} == {
        "2020-05-28T08:00:45Z"}  # 44.5 s, rounded up: not the 30 s backoff
    assert deliver(config, store, NOW + timedelta(seconds=45)).sent == 4
    first, *rest = receiver.deliveries
    [again] = [d for d in rest if d.id == first.id]  # the same event, PUT again
    assert first.path == again.path == (
        f"/_matrix/client/v3/rooms/!news:example.org/send/m.room.message/{first.id}")
    assert {(d.method, d.headers["authorization"]) for d in receiver.deliveries} == {
        ("PUT", "Bearer syt_bot_token")}
    [press] = [d for d in rest if GERMANY in d.body["body"]]
    assert press.body["msgtype"] == "m.text" and press.body["format"] == "org.matrix.custom.html"
    assert press.body["body"].splitlines()[0] == f"== Press Release: {GERMANY}"
    assert press.body["formatted_body"].startswith(f"<h2>Press Release: {GERMANY}</h2>")
    [edit] = [d for d in rest if "<del>" in d.body["formatted_body"]]
    assert edit.body["formatted_body"].endswith(
        "<p>On 7 <del>of</del> May 2020 in Kyiv, ICMPD organized …</p>")


def test_a_matrix_digest_stays_under_the_event_size_a_homeserver_takes():
    from dataclasses import replace

    from harvester.notify.render import MATRIX_LIMIT, matrix_message

    many = [replace(_message("item.new"), id=f"n{i}", item={
        "title": f"Item {i}", "summary": "word <b> & " * 400}) for i in range(60)]
    event = matrix_message(many, True)
    assert len(json.dumps(event, ensure_ascii=False).encode()) <= MATRIX_LIMIT
    shown = event["body"].count("\n== Item ")
    assert 0 < shown < 60
    assert event["body"].endswith(f"… and {60 - shown} more notifications (harvester outbox "
                                  "lists them)")
    assert "word &lt;b&gt; &amp;" in event["formatted_body"]
    assert "<b> &" not in event["formatted_body"]


def test_notify_test_names_a_receiver_that_is_down_or_silent(tmp_path, receiver):
    """What went wrong, in fetch's words: not requests' nested repr of its connection pool."""
    env = {"HV_HOOK_SECRET": os.environ["HV_HOOK_SECRET"]}
    down = f"http://127.0.0.1:{free_port()}/hook"
    cfg = make_config(tmp_path, HTTP + webhook_notifier(down))
    r = run_cli("--config", str(cfg), "notify-test", "hook", env=env)
    assert (r.returncode, r.stderr) == (1, f"harvester: error: hook: retry: POST {down}: "
                                           f"cannot connect: [Errno {errno.ECONNREFUSED}] "
                                           "Connection refused\n")
    receiver.hold = 3
    cfg = make_config(tmp_path, HTTP + webhook_notifier(receiver.url, extra="timeout = 1\n"))
    r = run_cli("--config", str(cfg), "notify-test", "hook", env=env)
    assert (r.returncode, r.stderr) == (
        1, f"harvester: error: hook: retry: POST {receiver.url}: timed out after 1s\n")


@pytest.mark.parametrize(("answer", "said"), [
    # a web server on the port given (mailpit's web UI, 8025, for its SMTP port, 1025)
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "does not answer as an SMTP server (a wrong port?):"
                                           " '/1.1 400 Bad Request'"),
    (None, 'timed out after 1s, with no greeting: if its port wants TLS at once (465), that '
           'is security = "tls"'),  # accepts, then says nothing
])
def test_notify_test_names_an_smtp_server_that_is_not_one_or_silent(tmp_path, answer, said):
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        if answer:
            conn.sendall(answer)
        time.sleep(2)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    mail = email_notifier(port, security="none", timeout=1).replace(
        'username_env = "HV_SMTP_USER"\npassword_env = "HV_SMTP_PASSWORD"\n', "").replace(
        'security = "starttls"\n', "")
    cfg = make_config(tmp_path, HTTP + mail)
    r = run_cli("--config", str(cfg), "notify-test", "team")
    listener.close()
    assert (r.returncode, r.stderr) == (
        1, f"harvester: error: team: retry: SMTP 127.0.0.1:{port}{'' if answer else ':'} {said}\n")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["mid-poll", "mid-delivery"])
def test_sigkill_then_rerun_delivers_everything_once_or_resends_same_id(
        server, icmpd_a, tmp_path, receiver, moment):
    """Killed while the feed or the receiver holds a request: after a re-run every
    notification was delivered, none was queued twice, a resend carried the same id."""
    import threading

    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", icmpd_a, first_run="all")
                      + webhook_notifier(receiver.url, rules="[]"))
    env = {**os.environ, "HV_HOOK_SECRET": os.environ["HV_HOOK_SECRET"], "PYTHONUTF8": "1"}
    arrived, release = threading.Event(), threading.Event()
    if moment == "mid-poll":
        body = feed_bytes("icmpd-2020-05-a.rss")

        def held(handler):
            arrived.set()
            release.wait(30)
            return Response(body)

        server.route("/rss", held)
    else:
        receiver.hold = 30.0
    proc = subprocess.Popen([sys.executable, "-m", "harvester", "--config", str(cfg), "once"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (arrived.is_set() or receiver.deliveries) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert arrived.is_set() or receiver.deliveries, "the run never reached the kill point"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    release.set()
    receiver.hold = 0.0
    server.route("/rss", Response(feed_bytes("icmpd-2020-05-a.rss")))
    r = run_cli("--config", str(cfg), "once", env=env)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in run_cli("--config", str(cfg), "outbox", "--json",
                                           env=env).stdout.splitlines()]
    assert len(rows) == 7 and {r["status"] for r in rows} == {"sent"}  # none queued twice
    ids = [d.id for d in receiver.deliveries]
    assert set(ids) == {r["id"] for r in rows}  # every one delivered at least once
    assert all(d.valid for d in receiver.deliveries)
    if moment == "mid-delivery":
        assert len(ids) == 8 and ids.count(ids[0]) == 2  # the interrupted one, resent once
    else:
        assert len(ids) == 7  # nothing had been committed, so nothing was resent
    integrity = __import__("sqlite3").connect(tmp_path / "h.db").execute(
        "PRAGMA integrity_check").fetchone()
    assert integrity == ("ok",)


_FEED_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60) | st.sampled_from([
    "=?utf-8?q?a=0D=0ABcc:_x@evil.org?=", "a\r\nBcc: x@evil.org", "<script>alert(1)</script>",
    "\u2028line\u2029para\x85next", "\u202eevil.exe", "x" * 300, "Ü" * 120, "&amp;<b>"])


@settings(max_examples=150, deadline=None)
@given(title=_FEED_TEXT, summary=_FEED_TEXT, category=_FEED_TEXT, digest=st.booleans())
@example(title=" ", summary="", category="", digest=False)  # CI's first run found it
def test_an_email_of_any_feed_text_has_only_its_own_headers_and_no_markup_of_the_feeds(
        title, summary, category, digest):
    """Whatever a feed puts in a title, summary or category — line breaks of any kind,
    encoded words hiding CR/LF, controls, markup, bidi overrides, runs no line may hold —
    the email serialises, parses back with exactly the headers the harvester wrote, a
    subject of one line, and an HTML part with no element the feed wrote."""
    from email import message_from_bytes
    from email import policy as email_policy

    from harvester.notify.email import build

    item = {"id": "i1", "title": title, "summary": summary, "category": category,
            "url": "https://www.icmpd.org/news/a/", "published": "2020-05-20T07:41:00Z",
            "first_seen": "2020-05-20T08:00:00Z"}
    messages = [Message(id=f"n{k}", notifier="team", event="item.new", source="icmpd-rss",
                        created_at="2020-05-20T07:41:00Z", item=item) for k in range(2)]
    msg = build(messages if digest else messages[:1], sender="ICMPD watch <w@example.org>",
                to=["news@example.org"], digest=digest, subject_prefix="[ICMPD]")
    back = message_from_bytes(msg.as_bytes(), policy=email_policy.default)
    assert sorted(back.keys()) == sorted(
        ["Subject", "From", "To", "Message-ID", "Auto-Submitted", "X-Auto-Response-Suppress",
         "Date", "X-Harvester-Event", "MIME-Version", "Content-Type"])
    # (a title of spaces leaves the prefix alone: no item is stored with one)
    assert "\n" not in back["Subject"] and back["Subject"].startswith("[ICMPD]")
    assert back["To"] == "news@example.org"
    html = back.get_body(("html",)).get_content()
    assert "<script" not in html.lower() and "<b>" not in html


@settings(max_examples=150, deadline=None)
@given(titles=st.lists(_FEED_TEXT, min_size=1, max_size=40), summary=_FEED_TEXT,
       digest=st.booleans())
def test_a_chat_message_of_any_feed_text_stays_within_what_its_service_takes(
        titles, summary, digest):
    """Slack, Discord, ntfy, Telegram, Teams and Matrix each cap what one message may carry;
    whatever a feed's titles and summaries hold, one or forty of them, each message is a
    JSON body within its service's cap, and no mention the feed wrote reaches Slack as one."""
    from harvester.notify.render import (
        CHAT_LIMITS,
        MATRIX_LIMIT,
        NTFY_LIMIT,
        TEAMS_LIMIT,
        TELEGRAM_LIMIT,
        chat_text,
        matrix_message,
        ntfy_message,
        teams_card,
        telegram_message,
    )

    messages = [_chat(t, summary=summary, url="https://www.icmpd.org/news/a/")
                for t in (titles if digest else titles[:1])]
    for style, limit in CHAT_LIMITS.items():
        text = chat_text(messages, digest, style)
        assert len(text) <= limit
        if style == "slack":
            assert "<!channel>" not in text and "<!everyone>" not in text
            assert not re.search(r"&(?!amp;|lt;|gt;)", text)  # no entity cut in two
            assert all(line.count("<") == line.count(">") for line in text.split("\n"))
    assert len(ntfy_message(messages, digest, "t")["message"].encode()) <= NTFY_LIMIT
    # the services' own caps: Telegram's 4,096 characters, a Teams card's ~28 KB, a Matrix
    # event's 65,536 bytes (the harvester cuts a little under each)
    telegram = telegram_message(messages, digest, "@c")["text"]
    assert len(telegram) <= 4096
    _assert_balanced(telegram)
    assert TELEGRAM_LIMIT < 4096 and TEAMS_LIMIT < 28_000 and MATRIX_LIMIT < 65_536
    assert len(json.dumps(teams_card(messages, digest), ensure_ascii=False).encode()) < 28_000
    assert len(json.dumps(matrix_message(messages, digest), ensure_ascii=False).encode()
               ) < 65_536
