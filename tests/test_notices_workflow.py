"""Notices that reach people, end to end: real cases on the time-skipping server, the relay
beside the worker, a real SMTP server. Reminders go before a deadline; a lapse emails each
level of the ladder to its recipient; compliance stops the ladder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest_asyncio

from application.journey import document
from domain import commands as cmd
from domain import events as ev
from domain.contacts import Contact, ContactRole
from domain.vocabulary import Stage
from eventstore.contacts import import_contacts
from eventstore.deliveries import deliveries_of
from notices.relay import relaying
from notices.settings import MailSettings
from runtime.mail_sink import MailSink, ReceivedMail
from tests.conftest import CaseWorld
from tests.mail_support import mail_sink_fixture, until_received  # noqa: F401
from tests.support import TEST_POLICIES
from tests.test_workflow_journey import (
    CPC,
    OFFICER,
    Journeys,
    a_council,
    act,
    at_level,
    contact,
    to_visited,
    url,
)


@dataclass
class Told:
    """The journeys' world with a relay running and a mailbox to read."""

    j: Journeys
    sink: MailSink

    async def mail(self, count: int, what: str) -> list[ReceivedMail]:
        return await until_received(self.sink, count, what, seconds=10)

    def addresses(self, council: str) -> dict[str, ContactRole]:
        gss = council.lower()
        return {f"ceo@{gss}.example.org": ContactRole.CHIEF_EXECUTIVE,
                f"contact@{gss}.example.org": ContactRole.COUNCIL_CONTACT,
                "adviser@lga.example.org": ContactRole.PRINCIPAL_ADVISER,
                "board@lga.example.org": ContactRole.IMPROVEMENT_BOARD}

    def told(self, council: str, since: int = 0) -> list[tuple[str, str]]:
        """(role, subject) of each message from the `since`-th on, in the order received."""
        roles = self.addresses(council)
        return [(roles[address].value, m.subject) for m in self.sink.received()[since:]
                for address in m.recipients]


@pytest_asyncio.fixture
async def told(case_world: CaseWorld, mail_sink: MailSink) -> AsyncIterator[Told]:
    journeys = Journeys(case_world)
    settings = MailSettings(host=mail_sink.host, port=mail_sink.port, implicit_tls=False,
                            start_tls=False, sender="cases@lga.example.org")
    async with relaying(journeys.store, settings, lease=timedelta(seconds=30)):
        yield Told(journeys, mail_sink)
    await journeys.leave_none_running()


def with_contacts(t: Told, council: str) -> None:
    people = [Contact(scope=council if not role.of_the_lga else "lga:England", role=role,
                      name=role.label, email=address)
              for address, role in t.addresses(council).items()]
    import_contacts(t.j.store, people, file_sha256="1" * 64, source="test",
                    imported_by="operator:test")


async def drafted(t: Told, council: str, policy: str) -> str:
    """A case of `policy`, visited, its draft sent to the council today."""
    j = t.j
    case_id = (await j.open(council, policy=policy)).state.case_id
    await to_visited(j, case_id, council)
    await act(j, case_id, cmd.DraftReport(actor=OFFICER, document_sha256=document("draft"),
                                          sent_on=await j.today()),
              Stage.REPORT_DRAFTED, ev.ReportDrafted)
    return case_id


async def test_reminders_then_each_level_of_the_ladder_reach_their_people(told: Told) -> None:
    t, j = told, told.j
    council = a_council()
    with_contacts(t, council)
    rules = TEST_POLICIES.resolve("short-reminded").rules_for(CPC)
    case_id = await drafted(t, council, "short-reminded")
    view = await j.cases.view(case_id)
    visit_at, sent_at = view.state.visit_recorded_at, view.state.draft_sent_at
    assert visit_at is not None and sent_at is not None
    # The team proposal and the draft went to the council contact.
    await t.mail(2, "the proposed team and the draft")
    assert [s for _, s in t.told(council)] == [
        f"{case_id}: proposed peer team", f"{case_id}: draft report for factual-accuracy check"]

    # The factual-accuracy check (2 hours) lapses untouched: told, not escalated.
    await j.skip_to(sent_at + rules.factual_accuracy_check + timedelta(minutes=5))
    await t.mail(4, "the factual-accuracy lapse")
    assert t.told(council, 2) == [
        ("council_contact", f"{case_id}: factual accuracy check deadline missed"),
        ("principal_adviser", f"{case_id}: factual accuracy check deadline missed")]

    # A day to publish: reminded 12 hours and 2 hours before, then the lapse climbs.
    due = visit_at + rules.report_publication
    await j.skip_to(due - timedelta(hours=12) + timedelta(minutes=5))
    await t.mail(5, "the 12-hour reminder")
    await j.skip_to(due - timedelta(hours=2) + timedelta(minutes=5))
    await t.mail(6, "the 2-hour reminder")
    day = f"{due:%Y-%m-%d}"
    assert t.told(council, 4) == [
        ("council_contact", f"{case_id}: report publication due on {day}"),
        ("council_contact", f"{case_id}: report publication due on {day}")]
    reminder = t.sink.received()[5]
    assert "falls due on" in reminder.text and "before then" in reminder.text

    await j.skip_to(due + timedelta(minutes=5))
    await j.until(case_id, at_level(1), "level 1")
    await t.mail(9, "the lapse and level 1")
    assert sorted(t.told(council, 6)) == sorted([
        ("council_contact", f"{case_id}: report publication deadline missed"),
        ("principal_adviser", f"{case_id}: report publication deadline missed"),
        ("chief_executive", f"{case_id}: escalation level 1 (report publication)")])
    for level, role in ((2, "principal_adviser"), (3, "improvement_board")):
        await j.skip(rules.escalation_interval)
        await j.until(case_id, at_level(level), f"level {level}")
        await t.mail(8 + level, f"level {level}")
        assert t.told(council, 8 + level - 1) == [
            (role, f"{case_id}: escalation level {level} (report publication)")]
    level_three = t.sink.received()[-1]
    assert "level 3 of 3" in level_three.text and "Escalation level: 3 of 3" in level_three.text

    for _ in range(100):  # the relay records a run of sends after the server's answers
        statuses = {d.status for d in deliveries_of(j.store, case_id=case_id,
                                                    now=await j.now())}
        if statuses == {"sent"}:
            break
        await asyncio.sleep(0.05)
    assert statuses == {"sent"} and t.sink.duplicates() == 0


async def test_a_lapse_is_told_once_the_server_is_back_and_compliance_stops_the_ladder(
        told: Told) -> None:
    """The mail server is down when the deadlines lapse: nothing is lost, all goes when it
    is back; then the council complies, and the ladder stops."""
    t, j = told, told.j
    council = a_council()
    with_contacts(t, council)
    rules = TEST_POLICIES.resolve("short-hours").rules_for(CPC)
    case_id = await drafted(t, council, "short-hours")
    visit_at = (await j.cases.view(case_id)).state.visit_recorded_at
    assert visit_at is not None
    await t.mail(2, "the team and the draft")
    t.sink.stop()  # the mail server goes down before the lapses
    await j.skip_to(visit_at + rules.report_publication + timedelta(minutes=5))
    await j.until(case_id, at_level(1), "level 1")
    await asyncio.sleep(1.5)  # the relay tries, and waits
    waiting = deliveries_of(j.store, case_id=case_id, status="pending", now=await j.now())
    assert len(waiting) == 5  # 2 for the factual-accuracy lapse, 3 for the report's
    t.sink.start()  # back: what waited goes, once
    await t.mail(7, "the lapses and level 1, once the server is back")  # team, draft, 2 + 3
    await act(j, case_id, cmd.PublishReport(actor=contact(council), published_on=await j.today(),
                                            url=url(council, "report")),
              Stage.REPORT_PUBLISHED, ev.ReportPublished, ev.EscalationResolved)
    await t.mail(8, "the resolution")
    assert t.told(council, 7) == [
        ("principal_adviser", f"{case_id}: escalation resolved (report publication)")]

    await j.skip(rules.escalation_interval * 3)  # the ladder would have climbed twice
    await asyncio.sleep(1)  # time for a relay poll or four
    assert len(t.sink.received()) == 8
    assert not any("escalation level 2" in m.subject for m in t.sink.received())
