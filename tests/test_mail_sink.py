"""The local mail sink, sent real mail over SMTP with aiosmtplib: what it keeps, how it
deduplicates by Message-ID, its fault switches, its privacy, and `cases dev mail`."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtplib import SMTPResponse

from runtime.mail_sink import INDEX, MailSink, duplicates, received
from tests.mail_support import mail_sink_fixture, message  # noqa: F401
from tests.support import run_cli


async def send(sink: MailSink, mail: EmailMessage | None = None, *, sender: str | None = None,
               recipients: list[str] | None = None) -> tuple[dict[str, SMTPResponse], str]:
    """One message over a connection of its own, as the engine sends one."""
    return await aiosmtplib.send(mail or message(), sender=sender, recipients=recipients,
                                 hostname="127.0.0.1", port=sink.port, timeout=10)


async def test_a_message_is_kept_with_its_parts(mail_sink: MailSink) -> None:
    before = datetime.now(UTC)
    await send(mail_sink, message("<escalation-cpc-E09000008-2026-1@cases.test>",
                                  to="Chief Exec <ce@council.test>",
                                  subject="Escalated: report overdue – £12m gap",
                                  text="Level 1 escalation.\nSecond line.\n",
                                  html="<p>Level 1 escalation.</p>"),
               sender="noreply@cases.test", recipients=["ce@council.test", "cc@lga.test"])
    [mail] = received(mail_sink.folder)
    assert mail.message_id == "<escalation-cpc-E09000008-2026-1@cases.test>"
    assert mail.sender == "noreply@cases.test"
    assert mail.recipients == ("ce@council.test", "cc@lga.test")
    assert mail.subject == "Escalated: report overdue – £12m gap"
    assert mail.date == "Wed, 01 Jul 2026 09:00:00 +0000"
    assert mail.text == "Level 1 escalation.\nSecond line.\n"
    assert mail.html == "<p>Level 1 escalation.</p>\n"
    assert before <= mail.received_at <= datetime.now(UTC)
    assert mail.path.suffix == ".eml" and b"Level 1 escalation." in mail.path.read_bytes()
    assert duplicates(mail_sink.folder) == 0


async def test_text_only_and_no_message_id_are_kept_each_time(mail_sink: MailSink) -> None:
    await send(mail_sink, message(None, subject="first"))
    await send(mail_sink, message(None, subject="second"))
    mails = received(mail_sink.folder)
    assert [(m.message_id, m.subject, m.html) for m in mails] == [
        (None, "first", None), (None, "second", None)]
    assert duplicates(mail_sink.folder) == 0


async def test_the_same_message_id_is_kept_once_and_counted_even_after_a_restart(
        tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    with MailSink(folder) as sink:
        first = await send(sink, message("<notice-7@cases.test>", subject="original"))
        again = await send(sink, message("<notice-7@cases.test>", subject="resent"))
        await send(sink, message("<notice-8@cases.test>"))
    assert first == ({}, "2.0.0 kept")
    assert again[1].startswith("2.0.0 already kept")
    with MailSink(folder) as restarted:  # what it has seen is read back from its folder
        await send(restarted, message("<notice-7@cases.test>", subject="after restart"))
    assert [(m.message_id, m.subject) for m in received(folder)] == [
        ("<notice-7@cases.test>", "original"), ("<notice-8@cases.test>", "Case escalated")]
    assert duplicates(folder) == 2


async def test_a_refused_address_bounces_and_only_that_one(mail_sink: MailSink) -> None:
    mail_sink.refuse("Gone@Council.test")
    errors, _ = await send(mail_sink, recipients=["gone@council.test", "here@council.test"])
    assert errors["gone@council.test"].code == 550
    assert errors["gone@council.test"].message == "5.1.1 mailbox unavailable"
    [mail] = received(mail_sink.folder)
    assert mail.recipients == ("here@council.test",)

    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mail_sink.port, timeout=10) as smtp:
        await smtp.mail("cases@engine.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as bounced:
            await smtp.rcpt("gone@council.test")
        assert bounced.value.code == 550 and bounced.value.recipient == "gone@council.test"
        assert (await smtp.rcpt("here@council.test")).code == 250
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(mail_sink, message("<only-gone@cases.test>"),
                   recipients=["gone@council.test"])

    mail_sink.stop_refusing("gone@council.test")
    await send(mail_sink, message("<back@cases.test>"), recipients=["gone@council.test"])
    assert received(mail_sink.folder)[-1].recipients == ("gone@council.test",)


async def test_a_temporary_failure_answers_4xx_until_it_is_lifted(mail_sink: MailSink) -> None:
    mail_sink.temporary_failure = True
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as deferred:
        await send(mail_sink)
    assert deferred.value.code == 451 and 400 <= deferred.value.code < 500
    assert deferred.value.message == "4.3.0 try again later"
    assert received(mail_sink.folder) == []
    mail_sink.temporary_failure = False
    await send(mail_sink)
    assert len(received(mail_sink.folder)) == 1


async def test_a_data_delay_holds_the_answer_without_holding_other_connections(
        mail_sink: MailSink) -> None:
    mail_sink.data_delay_seconds = 1.0
    started = time.monotonic()
    sending = asyncio.create_task(send(mail_sink))
    await asyncio.sleep(0.2)
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mail_sink.port, timeout=10) as other:
        assert (await other.noop()).code == 250
    assert time.monotonic() - started < 0.8
    assert not sending.done()
    await sending
    assert time.monotonic() - started >= 1.0


async def test_a_sender_killed_while_waiting_for_its_answer_resends_a_duplicate(
        mail_sink: MailSink) -> None:
    """Kept first, answered after the delay: a sender that dies meanwhile never saw its
    message accepted, resends it with the same Message-ID, and the inbox holds it once."""
    mail_sink.data_delay_seconds = 5.0
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=mail_sink.port, timeout=10)
    await smtp.connect()
    sending = asyncio.create_task(smtp.send_message(message("<notice-9@cases.test>")))
    deadline = time.monotonic() + 5
    while not received(mail_sink.folder) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not sending.done()
    smtp.close()  # the sender dies mid-send
    sending.cancel()
    with pytest.raises((asyncio.CancelledError, aiosmtplib.SMTPException)):
        await sending
    mail_sink.data_delay_seconds = 0
    await send(mail_sink, message("<notice-9@cases.test>"))
    assert [m.message_id for m in received(mail_sink.folder)] == ["<notice-9@cases.test>"]
    assert duplicates(mail_sink.folder) == 1


async def test_the_folder_and_its_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with MailSink(folder) as sink:
        await send(sink, message("<a@cases.test>"))
        await send(sink, message("<a@cases.test>"))
        await send(sink, message("<b@cases.test>"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(folder.iterdir())
    assert {f.name for f in files} >= {INDEX} and len(files) == 3
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_port_url_and_a_taken_port(tmp_path: Path) -> None:
    sink = MailSink(tmp_path / "mail")
    sink.start()
    try:
        assert sink.port > 0 and sink.url == f"smtp://127.0.0.1:{sink.port}"
        with pytest.raises(OSError):
            MailSink(tmp_path / "other", port=sink.port).start()
    finally:
        sink.stop()
    assert received(tmp_path / "nothing-here") == [] and duplicates(tmp_path / "none") == 0


async def test_cases_dev_mail_lists_what_was_received(
        mail_sink: MailSink, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_file = tmp_path / "dev.db"  # the sink's folder is tmp_path/mail, beside it
    await send(mail_sink, message("<n-1@cases.test>", subject="First \x1b[31mred", text="one\n"))
    await send(mail_sink, message("<n-2@cases.test>", to="b@council.test", text="two\n"),
               recipients=["b@council.test"])
    await send(mail_sink, message("<n-2@cases.test>"))
    capsys.readouterr()  # the sink's log lines

    assert await asyncio.to_thread(run_cli, ["dev", "mail", "--json",
                                             "--db-file", str(db_file)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["message_id"], m["recipients"], m["subject"], m["text"]) for m in listed] == [
        ("<n-1@cases.test>", ["officer@council.test"], "First \x1b[31mred", "one\n"),
        ("<n-2@cases.test>", ["b@council.test"], "Case escalated", "two\n")]
    assert listed[0]["sender"] == "cases@engine.test"
    assert datetime.fromisoformat(listed[0]["received_at"]) <= datetime.now(UTC)

    assert await asyncio.to_thread(run_cli, ["dev", "mail", "--db-file", str(db_file)]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "First \\x1b[31mred" in text
    assert text.index("<n-1@cases.test>") < text.index("<n-2@cases.test>")
    assert "2 messages kept" in text and "1 duplicate " in text


def test_cases_dev_refuses_a_busy_mail_port_before_starting_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    free = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free.append(str(probe.getsockname()[1]))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        code = run_cli(["dev", "--mail-sink", "--mail-port", str(busy), "--port", free[0],
                        "--web-port", free[1], "--db-file", str(tmp_path / "dev.db")])
    said = capsys.readouterr()
    assert code == 1
    assert said.err.strip().splitlines() == [
        f"cases: port {busy} on 127.0.0.1 is in use: stop what holds it, or choose another "
        "with --mail-port"]
    assert "ready" not in said.out + said.err and "Traceback" not in said.err
    assert not (tmp_path / "mail").exists()


def test_cases_dev_refuses_a_mail_port_without_the_mail_sink(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["dev", "--mail-port", "2525"]) == 2
    assert "add --mail-sink" in capsys.readouterr().err
