"""The council's portal (issue 18, item 5): a council user sees its own council's cases only,
with what is due from it and by when; one case's summary shows the draft report and the
proposed team; another council's case is a 404 that shows nothing of it. Cases are made
through the API on the time-skipping server; the read models are caught up before reading."""

from __future__ import annotations

from datetime import date
from typing import Any

from application.journey import demo_team
from eventstore.projections import Projector, case_rows
from tests.api_support import COUNCIL, OTHER, Api, scoped_case
from tests.test_api_roles import body_for
from tests.web_support import browser


def day(when: date) -> str:
    """As the pages write a date: `3 March 2026`."""
    return f"{when.day} {when.strftime('%B %Y')}"


async def opened(api: Api, council: str = COUNCIL) -> str:
    started = await api.start(council=council)
    assert started.status_code == 201, started.text
    case_id: str = started.json()["state"]["case_id"]
    api.leave_none_running(f"improvement-case-cpc-{council}")
    return case_id


async def with_team_proposed(api: Api, case_id: str) -> None:
    """The officer proposes a team by hand, and an adviser approves the request."""
    asked = await api.act("officer", case_id, action="propose_team",
                          team=[p.model_dump() for p in demo_team(COUNCIL)])
    assert asked.status_code == 200, asked.text
    [waiting] = asked.json()["state"]["awaiting_approval"]
    approved = await api.act("adviser", case_id, action="approve",
                             request_id=waiting["request_id"])
    assert approved.status_code == 200, approved.text


async def test_a_council_sees_its_own_cases_and_nothing_of_another_councils(api: Api) -> None:
    own = await opened(api)
    other = await opened(api, OTHER)
    Projector(api.world.store).catch_up()
    council = await browser(api, "council")

    portal = await council.get("/council")
    assert portal.status_code == 200, portal.text
    assert own in portal.text and f'href="/cases/{own}"' in portal.text
    assert other not in portal.text and OTHER not in portal.text
    summary = await council.get(f"/council/cases/{own}")
    assert summary.status_code == 200 and "No team proposed yet" in summary.text

    for elsewhere in (other, "cpc-E09000008-1999", "checkpoints", "no such case"):
        refused = await council.get(f"/council/cases/{elsewhere}")
        assert refused.status_code == 404, elsewhere
        assert "There is no case at this address" in refused.text
        assert other not in refused.text and OTHER not in refused.text
        assert "Budget gap" not in refused.text
    await council.aclose()


async def test_only_a_council_user_has_a_portal(api: Api) -> None:
    own = await opened(api)
    Projector(api.world.store).catch_up()
    for who in ("officer", "adviser", "auditor", "admin"):
        person = await browser(api, who)
        for url in ("/council", f"/council/cases/{own}"):
            refused = await person.get(url)
            assert refused.status_code == 403, (who, url)
            assert own not in refused.text and "Budget gap" not in refused.text
        await person.aclose()
    anyone = await browser(api)
    assert (await anyone.get("/council")).headers["location"] == "/sign-in?next=/council"


async def test_the_proposed_team_is_shown_and_an_objection_is_escaped(api: Api) -> None:
    case_id = await scoped_case(api)
    await with_team_proposed(api, case_id)
    reason = '<script>alert("peer")</script> worked here in 2024'
    objected = await api.act("council", case_id, action="object_to_peer",
                             peer_id="p-officer-finance", reason=reason)
    assert objected.status_code == 200, objected.text
    Projector(api.world.store).catch_up()
    council = await browser(api, "council")

    portal = await council.get("/council")
    assert "object to a proposed peer" in portal.text
    summary = await council.get(f"/council/cases/{case_id}")
    assert summary.status_code == 200
    for peer in demo_team(COUNCIL):
        assert peer.name in summary.text
    assert "The proposed peer team" in summary.text
    assert "Metropolitan Borough" in summary.text or "Birmingham" in summary.text
    assert "<script>alert" not in summary.text
    assert "Jo Pike: &lt;script&gt;alert(&#34;peer&#34;)&lt;/script&gt; worked here" in (
        summary.text)
    await council.aclose()


async def test_a_draft_report_is_due_back_by_its_deadline(api: Api) -> None:
    case_id = await scoped_case(api)
    today = api.world.store.read_case(case_id)[0].occurred_at.date()
    await with_team_proposed(api, case_id)
    for action in ("confirm_team", "schedule_visit", "record_visit", "give_feedback",
                   "draft_report"):
        body: dict[str, Any] = body_for(action, today)
        done = await api.act("officer", case_id, **body)
        assert done.status_code == 200, done.text
    Projector(api.world.store).catch_up()
    [row] = case_rows(api.world.store.engine, council=COUNCIL)
    assert row.next_deadline == "factual_accuracy_check" and row.next_deadline_at is not None
    council = await browser(api, "council")

    portal = await council.get("/council")
    assert "Check the draft report for factual accuracy" in portal.text
    assert f"by {day(row.next_deadline_at)}" in portal.text
    summary = await council.get(f"/council/cases/{case_id}")
    assert f"Draft, version 1, sent to you on {day(today)}" in summary.text
    assert "Factual-accuracy check of the draft report" in summary.text
    assert "Report published" in summary.text  # its deadline runs from the visit
    await council.aclose()
