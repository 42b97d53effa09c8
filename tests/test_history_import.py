"""`cases import-history` (issue 17): past peer challenges brought in whole or not at all, as
cases marked imported; finished ones closed, those under way followed by the engine from their
real dates (already lapsed ones escalate at once); the same file again changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain import events as ev
from domain.councils import Council
from domain.figures import figures_from_facts, financial_year
from domain.history_import import HistoryRefused, events_of, read_history
from domain.vocabulary import CaseKind, DeadlineName
from eventstore import EventStore
from eventstore.projections import Projector, all_facts, last_visits
from tests.api_support import COUNCIL, OTHER, Api
from tests.support import register_council
from workflows.messages import workflow_id_for

HEADER = ("council,kind,visit_start,visit_end,report_published_on,action_plan_published_on,"
          "progress_review_on,progress_review_published_on,closed_on,source,report_url")
TODAY = datetime.now(UTC).date()


def a_council(store: EventStore) -> str:
    return register_council(store, f"E{uuid.uuid4().int % 10**8:08d}")


def csv_of(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


async def imported(api: Api, data: bytes, who: str = "officer") -> dict[str, Any]:
    answer = await post_file(api, who, data)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def post_file(api: Api, who: str, data: bytes) -> httpx.Response:
    return await api.http.post("/api/imports/history", content=data, headers={
        "Content-Type": "text/csv", "Authorization": f"Bearer {api.tokens[who]}"})


async def eventually(store: EventStore, case_id: str, wanted: str) -> list[str]:
    for _ in range(300):
        types = [e.type for e in store.read_case(case_id)]
        if wanted in types:
            return types
        await asyncio.sleep(0.05)
    raise AssertionError(f"{case_id} never recorded {wanted}: {types}")


async def test_closed_under_way_and_lapsed_rows_become_cases(api: Api) -> None:
    store = api.world.store
    lapsed, fresh = a_council(store), a_council(store)
    recent = TODAY - timedelta(days=20)
    data = csv_of(
        f"{COUNCIL},corporate_peer_challenge,2017-03-06,2017-03-09,2017-05-30,2017-06-30,"
        "2018-01-15,2018-03-01,,LGA CPC report 2017,https://example.org/cpc-2017",
        f"{OTHER},corporate_peer_challenge,2018-09-10,2018-09-13,2018-11-20,,,,2019-06-01,,",
        f"{lapsed},corporate_peer_challenge,2024-01-08,2024-01-11,2024-03-28,,,,,,",
        f"{fresh},finance,{recent},{recent + timedelta(days=2)},,,,,,,")
    for council, kind in ((lapsed, CaseKind.CORPORATE_PEER_CHALLENGE),
                          (fresh, CaseKind.FINANCE)):
        api.leave_none_running(workflow_id_for(kind, council))
    answer = await imported(api, data)
    assert answer["rows"] == 4 and len(answer["imported"]) == 4
    croydon, birmingham, lapsed_case, fresh_case = answer["imported"]
    assert croydon == f"cpc-{COUNCIL}-2017" and fresh_case == f"fin-{fresh}-{recent.year}"
    assert sorted(answer["under_way"]) == sorted([lapsed_case, fresh_case])

    # finished rows are closed cases, every event marked imported and by the officer
    closed = store.read_case(croydon)
    assert [e.type for e in closed] == ["CaseRequested", "VisitHeld", "ReportPublished",
                                        "ActionPlanPublished", "ProgressReviewHeld",
                                        "ProgressReviewPublished", "CaseClosed"]
    request = closed[0].to_recorded().event
    assert isinstance(request, ev.CaseRequested) and request.imported is not None
    assert (request.imported.row, request.imported.events) == (2, 7)
    assert request.imported.source == "LGA CPC report 2017"
    assert {e.actor for e in closed} == {"case_officer:siân.jones"}
    assert [e.type for e in store.read_case(birmingham)][-1] == "CaseClosed"

    # under way and already lapsed: the engine records the lapses and escalates at once
    types = await eventually(store, lapsed_case, "EscalationRaised")
    assert types[:3] == ["CaseRequested", "VisitHeld", "ReportPublished"]
    missed = [e.to_recorded().event for e in store.read_case(lapsed_case)
              if e.type == "DeadlineMissed"]
    assert ev.DeadlineMissed(deadline=DeadlineName.ACTION_PLAN_PUBLICATION,
                             due_at=datetime(2024, 1, 12, tzinfo=UTC) + timedelta(days=152)
                             ) in missed

    # under way: the report is due 91 days after the visit's last day (already lapsed, if
    # the test server's clock has been moved years ahead by the session's other tests)
    report_due = datetime.combine(recent + timedelta(days=3), datetime.min.time(),
                                  tzinfo=UTC) + timedelta(days=91)
    view = await api.world.cases.view(fresh_case)
    if report_due > await api.world.env.get_current_time():
        assert view.next_deadline is not None
        assert view.next_deadline.due_at == report_due
    else:
        await eventually(store, fresh_case, "DeadlineMissed")
        fresh_lapses = [e.to_recorded().event for e in store.read_case(fresh_case)
                  if e.type == "DeadlineMissed"]
        assert ev.DeadlineMissed(deadline=DeadlineName.REPORT_PUBLICATION,
                                 due_at=report_due) in fresh_lapses

    # the figures and the councils due see the imported history
    Projector(store).catch_up()
    visits = last_visits(store.engine)
    assert visits[COUNCIL] == date(2017, 3, 9) and visits[lapsed] == date(2024, 1, 11)
    figures = figures_from_facts(all_facts(store.engine), *financial_year(2018))
    assert figures.case_ids["delivered"] == (birmingham,)
    assert figures.first_time_councils == 1  # Birmingham's first corporate challenge it knows

    # the same file again changes nothing
    position = store.last_position()
    heads = {case_id: store.head(case_id) for case_id in (croydon, birmingham)}
    again = await imported(api, data)
    assert again["imported"] == [] and len(again["already"]) == 4
    assert {case_id: store.head(case_id) for case_id in heads} == heads
    assert not [e for e in store.iter_after(position) if e.type == "CaseRequested"]


async def test_only_officers_and_advisers_import(api: Api) -> None:
    data = csv_of(f"{COUNCIL},corporate_peer_challenge,2017-03-06,2017-03-09,,,,,2017-04-01,,")
    for who in ("council", "auditor", "admin"):
        answer = await post_file(api, who, data)
        assert answer.status_code == 403, answer.text
        assert "only a case officer or an LGA principal adviser" in answer.json()["detail"]
    assert api.world.store.last_position() == 0


async def test_a_bad_file_is_refused_whole_with_every_problem(api: Api) -> None:
    store = api.world.store
    tomorrow = TODAY + timedelta(days=1)
    data = csv_of(
        f"{COUNCIL},corporate_peer_challenge,2017-03-06,2017-03-09,,,,,2017-04-01,,",  # fine
        "E99999999,corporate_peer_challenge,2017-03-06,2017-03-09,,,,,,,",
        f"{OTHER},peer_review,2017-03-06,2017-03-09,,,,,,,",
        f"{OTHER},finance,2019-03-06,2019-03-02,,,,,,,",
        f"{OTHER},planning,2019-02-30,2019-03-02,,,,,,,",
        f"{OTHER},communications,{TODAY},{tomorrow},,,,,,,",
        f"{OTHER},adult_social_care,2019-03-04,2019-03-06,,2019-05-01,,,,,")
    answer = await post_file(api, "officer", data)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["problems"]
    assert problems == [
        "row 3, column council: E99999999 is not in the register (`cases councils import`)",
        "row 4, column kind: 'peer_review' is not a kind (one of corporate_peer_challenge, "
        "finance, childrens_services, adult_social_care, planning, communications, "
        "recovery_support)",
        "row 5, column visit_end: 2019-03-02 is before visit_start (2019-03-06)",
        "row 6, column visit_start: 2019-02-30 is not a date that exists",
        f"row 7, column visit_end: {tomorrow} is in the future (today is {TODAY})",
        "row 8, column action_plan_published_on: given without report_published_on: the steps "
        "come in order",
    ]
    assert "nothing imported: 6 problems" in answer.json()["detail"]
    assert store.last_position() == 0


async def test_a_challenge_under_way_does_not_take_an_open_cases_slot(api: Api) -> None:
    store = api.world.store
    started = await api.start()
    assert started.status_code == 201
    api.leave_none_running(workflow_id_for(CaseKind.CORPORATE_PEER_CHALLENGE, COUNCIL))
    position = store.last_position()
    data = csv_of(f"{COUNCIL},corporate_peer_challenge,2024-01-08,2024-01-11,,,,,,,")
    answer = await post_file(api, "officer", data)
    assert answer.status_code == 422
    assert f"{COUNCIL} already has an open corporate_peer_challenge" in answer.text
    assert store.last_position() == position


def _register(*codes: str, ended: tuple[str, ...] = ()) -> dict[str, Council]:
    return {code: Council(gss_code=code, code="TST", name=code, short_name=code, type="UA",
                          nation="England", current=code not in ended) for code in codes}


def test_the_file_is_read_whole_header_first() -> None:
    with pytest.raises(HistoryRefused) as refused:
        read_history([], ["council", "kind", "visit_start", "colour"], _register(), TODAY)
    assert [str(p) for p in refused.value.problems] == [
        "row 1: the header lacks visit_end, report_published_on, action_plan_published_on, "
        "progress_review_on, progress_review_published_on",
        "row 1: unknown columns colour (the columns are council, kind, visit_start, visit_end, "
        "report_published_on, action_plan_published_on, progress_review_on, "
        "progress_review_published_on, requested_on, visit_mode, report_url, action_plan_url, "
        "progress_review_url, closed_on, source)"]


def test_two_challenges_under_way_for_one_slot_and_an_ended_council_are_refused() -> None:
    header = HEADER.split(",")
    row = dict.fromkeys(header, "")
    rows = [{**row, "council": "E06000001", "kind": "finance", "visit_start": "2024-01-08",
             "visit_end": "2024-01-09"},
            {**row, "council": "E06000001", "kind": "finance", "visit_start": "2025-01-08",
             "visit_end": "2025-01-09"},
            {**row, "council": "E06000002", "kind": "finance", "visit_start": "2025-01-08",
             "visit_end": "2025-01-09"},
            {**row, "council": "E06000002", "kind": "planning", "visit_start": "2015-01-08",
             "visit_end": "2015-01-09", "closed_on": "2016-01-01"}]
    with pytest.raises(HistoryRefused) as refused:
        read_history(rows, header, _register("E06000001", "E06000002", ended=("E06000002",)),
                     TODAY)
    assert [str(p) for p in refused.value.problems] == [
        "row 3: a second finance of E06000001 still under way (row 2 is the other); give the "
        "older one its closed_on",
        "row 4, column council: E06000002 has ended: a challenge still under way needs a "
        "current council (give it a closed_on)"]


def test_a_finished_row_ends_closed_and_its_request_counts_its_events() -> None:
    header = HEADER.split(",")
    [challenge] = read_history([{
        **dict.fromkeys(header, ""), "council": "E06000001", "kind": "corporate_peer_challenge",
        "visit_start": "2019-05-06", "visit_end": "2019-05-09",
        "report_published_on": "2019-07-01", "action_plan_published_on": "2019-07-01",
        "progress_review_on": "2020-02-03", "progress_review_published_on": "2020-03-02"}],
        header, _register("E06000001"), TODAY)
    events = events_of(challenge, "a" * 64)
    request = events[0]
    assert isinstance(request, ev.CaseRequested) and request.imported is not None
    assert request.imported.events == len(events) == 7
    assert request.requested_on == date(2019, 5, 6) and request.business_dates
    assert isinstance(events[-1], ev.CaseClosed)
