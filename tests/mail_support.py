"""A running mail sink for any test that sends mail: `from tests.mail_support import
mail_sink_fixture  # noqa: F401` makes the fixture `mail_sink` available in that module
(importing it under its fixture name works too, but then ruff flags every test that takes a
`mail_sink` parameter as redefining the import, F811)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from runtime.mail_sink import MailSink, ReceivedMail


@pytest.fixture(name="mail_sink")
def mail_sink_fixture(tmp_path: Path) -> Iterator[MailSink]:
    """A MailSink on a free port of 127.0.0.1, keeping mail in `tmp_path/mail`; stopped after
    the test. Its fault switches start off."""
    with MailSink(tmp_path / "mail") as sink:
        yield sink


mail_sink = mail_sink_fixture
"""The same fixture, importable by its fixture name."""


def message(message_id: str | None = "<notice-1@cases.test>", *,
            to: str = "officer@council.test", subject: str = "Case escalated",
            text: str = "The deadline has passed.\n", html: str | None = None,
            sender: str = "cases@engine.test") -> EmailMessage:
    """An email as the engine sends one: text, optionally an HTML alternative."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = "Wed, 01 Jul 2026 09:00:00 +0000"
    if message_id is not None:
        mail["Message-ID"] = message_id
    mail.set_content(text)
    if html is not None:
        mail.add_alternative(html, subtype="html")
    return mail


async def until_received(sink: MailSink, count: int, what: str = "the mail",
                         seconds: float = 15) -> list[ReceivedMail]:
    """Wait (real time: the relay polls) until the sink holds `count` messages; fail naming
    `what` and the subjects it does hold."""
    for _ in range(int(seconds / 0.05)):
        received = sink.received()
        if len(received) >= count:
            return received
        await asyncio.sleep(0.05)
    raise AssertionError(f"waited for {what}: {count} messages, have "
                         f"{[m.subject for m in sink.received()]}")
