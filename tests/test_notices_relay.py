"""The relay against a real SMTP server (the mail sink) and a real store: each notice reaches
the people holding its recipient's role, once; nothing is lost while the server is down; a
notice nobody can receive goes to a stand-in and is shown as undeliverable."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.main import run as cases
from domain import events as ev
from domain.contacts import Contact, ContactRole
from domain.notifications import notifications_for
from domain.recorded import Recorded
from domain.state import CaseState, apply
from domain.vocabulary import DeadlineName
from eventstore import EventStore, open_store
from eventstore.contacts import import_contacts
from eventstore.deliveries import deliveries_of
from eventstore.records import NewEvent, OutboxMessage
from notices.relay import Relay
from notices.settings import MailSettings
from runtime.mail_sink import MailSink
from tests.conftest import POSTGRES_URL, drop_schema, postgres_store_in_new_schema
from tests.mail_support import mail_sink_fixture, until_received  # noqa: F401
from tests.support import register_council

COUNCIL = "E06000042"
DUE = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def contacts_for(council: str, *, without: tuple[ContactRole, ...] = (),
                 adviser: bool = True) -> list[Contact]:
    people = [Contact(scope=council, role=ContactRole.CHIEF_EXECUTIVE, name="Chief Executive",
                      email=f"ceo@{council.lower()}.example.org"),
              Contact(scope=council, role=ContactRole.COUNCIL_CONTACT, name="Contact",
                      email=f"contact@{council.lower()}.example.org"),
              Contact(scope="lga:England", role=ContactRole.IMPROVEMENT_BOARD, name="Board",
                      email="board@lga.example.org")]
    if adviser:
        people.append(Contact(scope="lga:England", role=ContactRole.PRINCIPAL_ADVISER,
                              name="Adviser", email="adviser@lga.example.org"))
    return [p for p in people if p.role not in without]


def put_contacts(store: EventStore, people: list[Contact]) -> int:
    return import_contacts(store, people, file_sha256="0" * 64, source="test",
                           imported_by="operator:test")


def record(store: EventStore, case_id: str, council: str, *events: ev.Event) -> None:
    """Append `events` to a case with the notices the domain gives them, as the workflow
    does (the relay does not care how they got there)."""
    head = store.read_case(case_id)
    state = CaseState(case_id=case_id, council=council, version=len(head))
    new, notices = [], []
    for event in events:
        event_id, now = str(uuid.uuid4()), datetime.now(UTC)
        new.append(NewEvent.of(event, event_id=event_id, occurred_at=now,
                               actor="system:escalation"))
        notices += [OutboxMessage(event_id=event_id, recipient=n.key, subject=n.subject,
                                  body=n.body, notice=n.model_dump(mode="json"))
                    for n in notifications_for(state, event)]
        state = apply(state, Recorded(case_id=case_id, version=state.version + 1,
                                      event_id=event_id, occurred_at=now,
                                      actor="system:escalation", event=event))
    store.append(case_id, len(head), new, notices)


def lapse(store: EventStore, case_id: str = f"cpc-{COUNCIL}-2027",
          council: str = COUNCIL) -> None:
    """A report publication lapse: a notice to the council contact and to the adviser, and
    level 1 of the ladder to the chief executive."""
    record(store, case_id, council,
           ev.DeadlineMissed(deadline=DeadlineName.REPORT_PUBLICATION, due_at=DUE),
           ev.EscalationRaised(deadline=DeadlineName.REPORT_PUBLICATION, level=1,
                               recipient=f"chief executive of {council}"))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[EventStore]:
    """A migrated store on each database, that `cases` commands use too, with the council
    registered."""
    if request.param == "sqlite":
        store, url, schema = open_store(f"sqlite:///{tmp_path}/cases.db"), None, None
        store.migrate()
    else:
        store, schema = postgres_store_in_new_schema()
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("CASES_DATABASE_URL", url or store.engine.url.render_as_string())
    register_council(store, COUNCIL)
    yield store
    if schema is None:
        store.dispose()
    else:
        drop_schema(store, schema)


def settings_for(sink: MailSink, **more: object) -> MailSettings:
    return MailSettings(host=sink.host, port=sink.port, implicit_tls=False, start_tls=False,
                        sender="cases@lga.example.org",
                        public_url="https://cases.lga.example.org", **more)  # type: ignore[arg-type]


async def drain(relay: Relay) -> None:
    while await relay.deliver_due():
        pass


def by_recipient(sink: MailSink) -> dict[str, list[str]]:
    told: dict[str, list[str]] = {}
    for mail in sink.received():
        for address in mail.recipients:
            told.setdefault(address, []).append(mail.subject)
    return told


async def test_each_notice_reaches_its_role_once_with_text_and_html(
        store: EventStore, mail_sink: MailSink) -> None:
    version = put_contacts(store, contacts_for(COUNCIL))
    lapse(store)
    relay = Relay(store, settings_for(mail_sink))
    await drain(relay)
    await drain(relay)  # nothing is sent twice

    case_id = f"cpc-{COUNCIL}-2027"
    missed = f"{case_id}: report publication deadline missed"
    assert by_recipient(mail_sink) == {
        f"contact@{COUNCIL.lower()}.example.org": [missed],
        "adviser@lga.example.org": [missed],
        f"ceo@{COUNCIL.lower()}.example.org": [
            f"{case_id}: escalation level 1 (report publication)"]}
    ceo = next(m for m in mail_sink.received() if m.subject.endswith("(report publication)"))
    for part in (ceo.text, ceo.html or ""):
        assert f"Test {COUNCIL}" in part and COUNCIL in part and case_id in part
        assert "level 1 of 3" in part and "1 March 2027" in part
        assert f"https://cases.lga.example.org/cases/{case_id}" in part
    assert "publish the final peer challenge report" in ceo.text
    assert len({m.message_id for m in mail_sink.received()}) == 3
    assert mail_sink.duplicates() == 0

    delivered = deliveries_of(store, now=datetime.now(UTC))
    assert [d.status for d in delivered] == ["sent"] * 3
    assert all(d.contacts_version == version and d.attempts == 1 for d in delivered)
    assert all(d.answer and d.answer.startswith("2") for d in delivered)  # "250 OK"-style


async def test_html_part_escapes_what_the_record_holds(store: EventStore,
                                                       mail_sink: MailSink) -> None:
    from domain.councils import Council
    from eventstore.councils import import_councils

    odd = "E06000043"
    import_councils(store, [Council(gss_code=odd, code="ODD", short_name="Odd", type="UA",
                                    name="<script>alert(1)</script> & Co", nation="England")])
    put_contacts(store, contacts_for(odd))
    lapse(store, case_id=f"cpc-{odd}-2027", council=odd)
    await drain(Relay(store, settings_for(mail_sink)))
    for mail in mail_sink.received():
        assert "<script>" not in (mail.html or "")
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in (mail.html or "")
        assert "<script>alert(1)</script> & Co" in mail.text  # plain text is plain


async def test_the_message_id_comes_from_the_notice_so_a_resend_is_the_same_mail(
        store: EventStore, mail_sink: MailSink) -> None:
    put_contacts(store, contacts_for(COUNCIL))
    lapse(store)
    relay = Relay(store, settings_for(mail_sink))
    await drain(relay)
    first = sorted(m.message_id or "" for m in mail_sink.received())
    # The same notices, sent again by a relay that lost its records: same ids, kept once.
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM deliveries")
    await drain(relay)
    assert sorted(m.message_id or "" for m in mail_sink.received()) == first
    assert mail_sink.duplicates() == 3


async def test_while_the_server_is_down_notices_wait_and_go_when_it_is_back(
        store: EventStore, tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    put_contacts(store, contacts_for(COUNCIL))
    lapse(store)
    with MailSink(tmp_path / "mail") as sink:
        port = sink.port
    relay = Relay(store, settings_for(sink), poll_seconds=0.05)
    stopping = asyncio.Event()
    with capture_logs() as logs:
        running = asyncio.create_task(relay.run(stopping))
        await asyncio.sleep(1.5)  # the server is down: a try, a backoff, another try
    pending = deliveries_of(store, now=datetime.now(UTC))
    assert [d.status for d in pending] == ["pending"] * 3
    assert all(d.attempts == 0 for d in pending)  # handed back untried, not used up
    said = [e for e in logs if e["event"].startswith("mail server unavailable")]
    # one line a backoff step (after 0 s, and 1 s if the machine keeps up), not one a notice
    assert 1 <= len(said) <= 2, logs
    assert all(e["notices_waiting"] == 3 for e in said)
    with MailSink(tmp_path / "mail", port=port) as back:
        await until_received(back, 3, "the notices, once the server is back")
        stopping.set()
        await running
        assert len(back.received()) == 3 and back.duplicates() == 0
    assert [d.status for d in deliveries_of(store, now=datetime.now(UTC))] == ["sent"] * 3


async def test_a_server_that_says_try_later_is_a_wait_not_a_failure(
        store: EventStore, mail_sink: MailSink) -> None:
    put_contacts(store, contacts_for(COUNCIL))
    lapse(store)
    mail_sink.temporary_failure = True
    relay = Relay(store, settings_for(mail_sink), poll_seconds=0.05)
    stopping = asyncio.Event()
    running = asyncio.create_task(relay.run(stopping))
    await asyncio.sleep(0.5)
    assert mail_sink.received() == []
    assert {d.status for d in deliveries_of(store, now=datetime.now(UTC))} == {"pending"}
    mail_sink.temporary_failure = False
    await until_received(mail_sink, 3, "the notices, once the server takes them")
    stopping.set()
    await running
    assert len(mail_sink.received()) == 3


async def test_a_missing_contact_is_undeliverable_and_goes_to_the_adviser(
        store: EventStore, mail_sink: MailSink, capsys: pytest.CaptureFixture[str]) -> None:
    put_contacts(store, contacts_for(COUNCIL, without=(ContactRole.CHIEF_EXECUTIVE,)))
    lapse(store)
    await drain(Relay(store, settings_for(mail_sink)))

    told = by_recipient(mail_sink)
    case_id = f"cpc-{COUNCIL}-2027"
    assert f"Undeliverable: {case_id}: escalation level 1 (report publication)" in told[
        "adviser@lga.example.org"]
    standing_in = next(m for m in mail_sink.received() if m.subject.startswith("Undeliverable"))
    assert "meant for the chief executive" in standing_in.text
    assert "no contact for the chief executive" in standing_in.text

    capsys.readouterr()  # the sink's and relay's log lines so far
    assert await asyncio.to_thread(cases, ["outbox", "--json", "--status", "undeliverable"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert shown["case_id"] == case_id and shown["recipient"] == "chief_executive"
    assert shown["sent_to"] == ["adviser@lga.example.org"]
    assert "no contact for the chief executive of Test" in shown["problem"]
    assert await asyncio.to_thread(cases, ["outbox"]) == 0
    text = capsys.readouterr().out
    assert "UNDELIVERABLE" in text and "2 sent" in text and "1 undeliverable" in text
    assert await asyncio.to_thread(cases, ["history", case_id]) == 0
    timeline = capsys.readouterr().out
    assert "who was told:" in timeline and "UNDELIVERABLE" in timeline
    assert f"council contact (contact@{COUNCIL.lower()}.example.org)" in timeline


async def test_with_no_adviser_the_admins_stand_in_and_with_none_it_fails(
        store: EventStore, mail_sink: MailSink) -> None:
    put_contacts(store, contacts_for(COUNCIL, without=(ContactRole.CHIEF_EXECUTIVE,),
                                     adviser=False))
    lapse(store)
    await drain(Relay(store, settings_for(mail_sink, admin_emails=("ops@lga.example.org",))))
    statuses = {(d.notice.recipient, d.status, d.sent_to)
                for d in deliveries_of(store, now=datetime.now(UTC))}
    assert statuses == {
        ("council_contact", "sent", (f"contact@{COUNCIL.lower()}.example.org",)),
        ("principal_adviser", "undeliverable", ("ops@lga.example.org",)),
        ("chief_executive", "undeliverable", ("ops@lga.example.org",))}

    record(store, f"cpc-{COUNCIL}-2027", COUNCIL, ev.EscalationRaised(
        deadline=DeadlineName.REPORT_PUBLICATION, level=2, recipient="LGA principal adviser"))
    await drain(Relay(store, settings_for(mail_sink)))  # no admins either
    [failed] = deliveries_of(store, status="failed", now=datetime.now(UTC))
    assert failed.notice.recipient == "principal_adviser" and failed.sent_to == ()
    assert failed.problem is not None and "CASES_ADMIN_EMAIL" in failed.problem


async def test_an_address_the_server_refuses_is_undeliverable_and_a_stand_in_is_told(
        store: EventStore, mail_sink: MailSink) -> None:
    put_contacts(store, contacts_for(COUNCIL))
    mail_sink.refuse(f"ceo@{COUNCIL.lower()}.example.org")
    lapse(store)
    await drain(Relay(store, settings_for(mail_sink)))
    [bounced] = deliveries_of(store, status="undeliverable", now=datetime.now(UTC))
    assert bounced.notice.recipient == "chief_executive"
    assert bounced.sent_to == ("adviser@lga.example.org",)
    assert bounced.problem is not None and "550" in bounced.problem


async def test_two_relays_at_once_send_each_notice_once(store: EventStore,
                                                        mail_sink: MailSink) -> None:
    put_contacts(store, contacts_for(COUNCIL))
    for year in range(2027, 2047):
        lapse(store, case_id=f"cpc-{COUNCIL}-{year}")
    one = Relay(store, settings_for(mail_sink), name="one", batch=7)
    two = Relay(store, settings_for(mail_sink), name="two", batch=7)
    await asyncio.gather(drain(one), drain(two))
    assert len(mail_sink.received()) == 60 and mail_sink.duplicates() == 0
    assert {d.status for d in deliveries_of(store, now=datetime.now(UTC))} == {"sent"}


async def test_a_claim_that_lapses_is_taken_over(store: EventStore,
                                                 mail_sink: MailSink) -> None:
    """A relay that died holding notices: once its claim lapses another sends them."""
    from eventstore.deliveries import claim_due

    put_contacts(store, contacts_for(COUNCIL))
    lapse(store)
    now = datetime.now(UTC)
    assert len(claim_due(store, now=now, lease=timedelta(seconds=1), relay="dead")) == 3
    later = Relay(store, settings_for(mail_sink), name="later")
    assert await later.deliver_due() == 0  # still claimed
    later.clock = lambda: datetime.now(UTC) + timedelta(seconds=2)
    await drain(later)
    assert len(mail_sink.received()) == 3


def test_outbox_on_a_store_with_no_notices_says_so(store: EventStore,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cases(["outbox"]) == 0
    assert "no notices" in capsys.readouterr().out


def test_the_case_status_says_who_was_told_what_and_who_was_not() -> None:
    from cli.render import notices

    shown = notices([
        {"recipient": "chief_executive", "status": "sent", "subject": "x: escalation level 1",
         "sent_to": ["ceo@e06000042.example.org"], "finished_at": "2027-03-01T09:31:00+00:00"},
        {"recipient": "council_contact", "status": "undeliverable", "subject": "x: missed",
         "sent_to": ["adviser@lga.example.org"], "finished_at": "2027-03-01T09:31:00+00:00",
         "problem": "no contact for the council contact of Test\x1b[2J"},
        {"recipient": "improvement_board", "status": "failed", "subject": "x: level 3",
         "sent_to": [], "problem": "nobody to stand in"},
        {"recipient": "principal_adviser", "status": "pending", "subject": "x: level 2",
         "sent_to": [], "created_at": "2027-03-15T09:31:00+00:00"}])
    assert "told     2027-03-01 09:31 chief executive (ceo@e06000042.example.org)" in shown
    assert "UNDELIVERABLE 2027-03-01 09:31 to the council contact" in shown
    assert "told instead: adviser@lga.example.org" in shown
    assert "NOT TOLD" in shown and "to tell   the principal adviser" in shown
    assert "\x1b" not in shown


async def test_a_relay_outlives_a_database_outage_and_then_delivers(
        mail_sink: MailSink) -> None:
    """The store unreachable (a cut link to PostgreSQL): the relay waits with backoff, and
    sends what is due once the link is back. Nothing is lost, nothing sent twice."""
    from tests.conftest import need_postgres
    from tests.tcp_proxy import CuttableProxy

    need_postgres()
    direct, schema = postgres_store_in_new_schema()
    proxy = CuttableProxy("127.0.0.1", 5432)
    proxy.start()
    through = open_store(f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test",
                         connect_args={"options": f"-csearch_path={schema}",
                                       "connect_timeout": 2})
    try:
        register_council(direct, COUNCIL)
        put_contacts(direct, contacts_for(COUNCIL))
        proxy.cut()
        lapse(direct)  # written while the relay's link is down
        relay = Relay(through, settings_for(mail_sink), poll_seconds=0.05)
        stopping = asyncio.Event()
        running = asyncio.create_task(relay.run(stopping))
        await asyncio.sleep(2.5)
        assert mail_sink.received() == [] and not running.done()
        proxy.restore()
        await until_received(mail_sink, 3, "the notices, once the store is back")
        stopping.set()
        await running
        assert len(mail_sink.received()) == 3 and mail_sink.duplicates() == 0
    finally:
        through.dispose()
        proxy.stop()
        drop_schema(direct, schema)


def test_a_smtp_url_that_cannot_be_used_stops_the_worker_in_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    for url, named in (("http://mail.example.org", "the scheme is 'http'"),
                       ("smtp://user:secret@mail.example.org", "holds credentials"),
                       ("smtp://mail.example.org:99999", "valid port")):
        done = subprocess.run(
            [str(Path(sys.executable).parent / "cases-worker")], capture_output=True, text=True,
            env={**os.environ, "CASES_SMTP_URL": url,
                 "CASES_DATABASE_URL": f"sqlite:///{tmp_path}/never.db"}, timeout=60)
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert "CASES_SMTP_URL" in line and named in line and "nothing was started" in line
        assert "secret" not in done.stderr + done.stdout and "Traceback" not in done.stderr
        assert not (tmp_path / "never.db").exists()


async def test_names_beyond_ascii_arrive_as_written(store: EventStore,
                                                    mail_sink: MailSink) -> None:
    from domain.councils import Council
    from eventstore.councils import import_councils

    welsh = "W06000001"
    import_councils(store, [Council(gss_code=welsh, code="AGY", short_name="Ynys Môn",
                                    type="UA", name="Cyngor Sir Ynys Môn — Anglesey",
                                    nation="Wales")])
    put_contacts(store, contacts_for(welsh))
    lapse(store, case_id=f"cpc-{welsh}-2027", council=welsh)
    await drain(Relay(store, settings_for(mail_sink)))
    for mail in mail_sink.received():
        assert "Cyngor Sir Ynys Môn — Anglesey" in mail.text
        assert "Cyngor Sir Ynys Môn — Anglesey" in (mail.html or "")
