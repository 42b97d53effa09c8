"""The case pages (issue 18, items 2 to 4), driven as a browser without JavaScript would: the
officer's dashboard, starting a case, and a case's page with the forms of the actions the
signed-in user may take now. Real Temporal (time-skipping) and a real store, over ASGI."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from markupsafe import escape

from application.journey import demo_team
from domain.peers import demo_pool
from eventstore.peers import import_pool
from tests.api_support import COUNCIL, Api, scoped_case
from tests.web_support import browser, csrf_of

CROYDON_SLOT = f"improvement-case-cpc-{COUNCIL}"


def key_of(html: str, action: str) -> str:
    """The request key of the form that sends `action` (or posts to that address), as the
    page made it."""
    found = re.search(rf'{action}" novalidate>\s*<input type="hidden" name="csrf_token" '
                      r'value="[^"]+">\s*<input type="hidden" name="request_key" value="([^"]+)"',
                      html)
    assert found is not None, f"the page offers no {action} form"
    return found.group(1)


def error_beside(html: str, field_id: str) -> str:
    """The error message shown beside the field with that id (GOV.UK: `ID-error`)."""
    found = re.search(rf'<p id="{field_id}-error" class="govuk-error-message">(.*?)</p>', html,
                      re.S)
    assert found is not None, f"no error beside {field_id}"
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


def section(html: str, element_id: str) -> str:
    """The page from the element with that id up to the next heading."""
    start = html.index(f'id="{element_id}"')
    heading = re.search(r"<h[1-6]", html[start:])
    return html[start:start + heading.start() if heading else None]


async def test_an_officer_starts_a_case_from_the_form_and_lands_on_its_page(api: Api) -> None:
    officer = await browser(api, "officer")
    page = await officer.get("/cases/new")
    assert page.status_code == 200 and "Start a case" in page.text
    assert 'value="London Borough of Croydon (E09000008)"' in page.text

    unknown = await officer.submit("/cases/new", "/cases/new", {
        "council": "<b>Atlantis</b>", "kind": "corporate_peer_challenge", "reason": "Gap"})
    assert unknown.status_code == 422
    assert "No council the engine knows is called “&lt;b&gt;Atlantis&lt;/b&gt;”" in (
        error_beside(unknown.text, "case-council"))
    assert "<b>Atlantis" not in unknown.text
    assert 'href="#case-council"' in unknown.text  # the error summary links to the field

    reason = 'Budget gap <script>alert("s151")</script> flagged'
    form = (await officer.get("/cases/new")).text
    sent = {"csrf_token": csrf_of(form), "request_key": key_of(form, "/cases/new"),
            "council": "croydon", "kind": "corporate_peer_challenge", "reason": reason,
            "scope": "finance, governance"}
    started = await officer.http.post("/cases/new", data=sent)
    assert started.status_code == 303, started.text
    api.leave_none_running(CROYDON_SLOT)
    case_id = f"cpc-{COUNCIL}-{datetime.now(UTC).year}"
    assert started.headers["location"] == f"/cases/{case_id}?recorded=request"
    twice = await officer.http.post("/cases/new", data=sent)  # sent again: the same opening
    assert twice.status_code == 303 and twice.headers["location"] == started.headers["location"]
    [request] = api.world.store.read_case(case_id)
    assert (request.actor, request.payload["reason"]) == ("case_officer:siân.jones", reason)

    shown = await officer.get(started.headers["location"])
    assert shown.status_code == 200 and "The case is opened." in shown.text
    assert "London Borough of Croydon" in shown.text and "finance, governance" in shown.text
    assert "&lt;script&gt;alert(&#34;s151&#34;)&lt;/script&gt;" in shown.text
    assert "<script>alert" not in shown.text
    assert 'actions/scope"' in shown.text and 'actions/confirm_team"' not in shown.text

    again = await officer.submit("/cases/new", "/cases/new", {
        "council": "E09000008", "kind": "corporate_peer_challenge", "reason": "Again"})
    assert again.status_code == 409
    assert "already has an open corporate peer challenge" in error_beside(again.text,
                                                                          "case-council")
    assert api.versions(case_id) == 1


async def test_an_officer_scopes_through_the_form_once_however_often_it_is_sent(
        api: Api) -> None:
    started = await api.start()
    assert started.status_code == 201, started.text
    api.leave_none_running(CROYDON_SLOT)
    case_id = started.json()["state"]["case_id"]
    officer = await browser(api, "officer")
    page = (await officer.get(f"/cases/{case_id}")).text
    sent = {"csrf_token": csrf_of(page), "request_key": key_of(page, "scope"),
            "scope": "finance, governance", "visit_mode": "remote"}

    forged = await officer.http.post(f"/cases/{case_id}/actions/scope",
                                     data={**sent, "csrf_token": ""})
    assert forged.status_code == 403 and "Nothing was changed" in forged.text
    assert api.versions(case_id) == 1

    scoped = await officer.http.post(f"/cases/{case_id}/actions/scope", data=sent)
    assert scoped.status_code == 303, scoped.text
    assert scoped.headers["location"] == f"/cases/{case_id}?recorded=scope"
    twice = await officer.http.post(f"/cases/{case_id}/actions/scope", data=sent)
    assert twice.status_code == 303  # the same request: answered as the first, not again
    assert [e.type for e in api.world.store.read_case(case_id)] == [
        "CaseRequested", "CaseScoped"]

    shown = (await officer.get(scoped.headers["location"])).text
    assert "Recorded: scope the case." in shown
    timeline = section(shown, "timeline")
    assert "Case scoped" in timeline and "case_officer:siân.jones" in timeline
    assert "scope: finance, governance" in timeline and "visit mode: remote" in timeline


async def test_a_refused_action_says_why_beside_the_field_and_records_nothing(
        api: Api) -> None:
    case_id = await scoped_case(api)
    before = api.versions(case_id)
    officer = await browser(api, "officer")
    form = f"/cases/{case_id}"

    early = await officer.submit(f"{form}/actions/select_team", form, {
        "visit_from-day": "1", "visit_from-month": "1", "visit_from-year": "2020",
        "visit_to-day": "2", "visit_to-month": "1", "visit_to-year": "2020"})
    assert early.status_code == 409
    beside = error_beside(early.text, "select-team-visit-from")
    assert "cannot select a peer team: 2020-01-01 is before the case was requested" in beside
    assert 'href="#select-team-visit-from-day"' in early.text

    bad_date = await officer.submit(f"{form}/actions/select_team", form, {
        "visit_from-day": "31", "visit_from-month": "2", "visit_from-year": "2027",
        "visit_to-day": "", "visit_to-month": "3", "visit_to-year": "2027"})
    assert bad_date.status_code == 422
    assert error_beside(bad_date.text, "select-team-visit-from") == (
        "Error: Visit from must be a real date")
    assert error_beside(bad_date.text, "select-team-visit-to") == (
        "Error: Visit to must include a day")
    assert 'value="31"' in bad_date.text  # what was typed is shown again

    too_long = await officer.submit(f"{form}/actions/withdraw", form, {"reason": "x" * 4001})
    assert too_long.status_code == 422
    assert "Reason must be 4,000 characters or fewer" in error_beside(too_long.text,
                                                                       "withdraw-reason")
    insecure = await officer.submit(f"{form}/actions/publish_report", form, {
        "published_on-day": "1", "published_on-month": "1", "published_on-year": "2026",
        "url": "http://croydon.gov.uk/report"})
    assert insecure.status_code == 422
    assert "starts with https://" in error_beside(insecure.text, "publish-report-url")
    not_yet = await officer.submit(f"{form}/actions/confirm_team", form, {})
    assert not_yet.status_code == 409
    assert "no peer team has been proposed yet" in section(not_yet.text, "confirm-team-refused")
    assert api.versions(case_id) == before


async def test_a_council_sees_its_own_case_with_its_own_actions_and_no_other(api: Api) -> None:
    case_id = await scoped_case(api)
    team = [p.model_dump(mode="json") for p in demo_team(COUNCIL)]
    asked = await api.act("officer", case_id, action="propose_team", team=team)
    assert asked.status_code == 200, asked.text
    approved = await api.act("adviser", case_id, action="approve",
                             request_id=asked.json()["state"]["awaiting_approval"][0]["request_id"])
    assert approved.status_code == 200, approved.text

    council = await browser(api, "council")
    own = await council.get(f"/cases/{case_id}")
    assert own.status_code == 200
    assert "HAND-PICKED" in own.text and "Cllr Amina Shah" in own.text
    offered = set(re.findall(rf"/cases/{case_id}/actions/(\w+)", own.text))
    assert offered == {"object_to_peer"}
    objected = await council.submit(f"/cases/{case_id}/actions/object_to_peer",
                                    f"/cases/{case_id}", {
                                        "peer_id": "p-officer-finance",
                                        "reason": "Worked here in 2024"})
    assert objected.status_code == 303, objected.text
    last = api.world.store.read_case(case_id)[-1]
    assert (last.type, last.actor) == ("PeerObjectedTo", f"council:{COUNCIL}:sam.lee")
    refused = await council.submit(f"/cases/{case_id}/actions/confirm_team",
                                   f"/cases/{case_id}", {})
    assert refused.status_code == 403 and "only a case officer or an LGA" in refused.text

    other = await browser(api, "other-council")
    hidden = await other.get(f"/cases/{case_id}")
    assert hidden.status_code == 404
    assert COUNCIL not in hidden.text and "Budget gap" not in hidden.text
    assert "Croydon" not in hidden.text
    assert (await other.submit(f"/cases/{case_id}/actions/object_to_peer", "/sign-out", {
        "peer_id": "p-lead-member", "reason": "Not ours"})).status_code == 404

    auditor = await browser(api, "auditor")
    read = await auditor.get(f"/cases/{case_id}")
    assert read.status_code == 200 and "/actions/" not in read.text
    assert "Peer objected to" in section(read.text, "timeline")


async def engine_today(api: Api) -> date:
    """The workflows' day: the test server's clock, which other tests move ahead."""
    return (await api.world.env.get_current_time()).date()


async def test_a_visit_recorded_through_its_form_starts_the_deadlines_shown(api: Api) -> None:
    case_id = await scoped_case(api)
    team = [p.model_dump(mode="json") for p in demo_team(COUNCIL)]
    today = await engine_today(api)
    asked = await api.act("officer", case_id, action="propose_team", team=team)
    for body in ({"action": "approve", "request_id": asked.json()["state"][
                      "awaiting_approval"][0]["request_id"]},
                 {"action": "confirm_team"},
                 {"action": "schedule_visit", "mode": "on_site", "starts_on": today.isoformat(),
                  "ends_on": today.isoformat()}):
        done = await api.act("adviser" if body["action"] == "approve" else "officer", case_id,
                             **body)
        assert done.status_code == 200, done.text
    officer = await browser(api, "officer")
    day = {"day": str(today.day), "month": str(today.month), "year": str(today.year)}
    recorded = await officer.submit(f"/cases/{case_id}/actions/record_visit", f"/cases/{case_id}",
                                    {**{f"started_on-{k}": v for k, v in day.items()},
                                     **{f"ended_on-{k}": v for k, v in day.items()}})
    assert recorded.status_code == 303, recorded.text
    page = (await officer.get(recorded.headers["location"])).text
    assert "Recorded: record the visit." in page
    deadlines = section(page, "deadlines")
    assert "Report publication" in deadlines and "Progress review publication" in deadlines
    assert "escalates to level 1 (chief executive of Croydon)" in deadlines
    assert "Level 3: improvement board" in section(page, "escalation")
    assert 'actions/give_feedback"' in page and 'actions/record_visit"' not in page


async def test_an_engine_selected_team_shows_why_each_peer_is_on_it(api: Api) -> None:
    import_pool(api.world.store, demo_pool(await engine_today(api)), "demo pool")
    case_id = await scoped_case(api)
    today = (await engine_today(api)).isoformat()
    selected = await api.act("officer", case_id, action="select_team", visit_from=today,
                             visit_to=today)
    assert selected.status_code == 200, selected.text
    team = selected.json()["state"]["proposed_team"]
    page = (await (await browser(api, "officer")).get(f"/cases/{case_id}")).text
    peers = section(page, "peer-team")
    assert "Selected by the engine" in page and "HAND-PICKED" not in page
    for seat in team:
        assert str(escape(seat["name"])) in peers and seat["peer_id"] in peers
    assert peers.count("eligible; ") == len(team) and "fairness rank" in peers


async def test_the_dashboard_is_the_lga_s_and_lists_what_waits_for_a_second_person(
        api: Api) -> None:
    case_id = await scoped_case(api)
    asked = await api.act("officer", case_id, action="withdraw", reason="Intervention instead")
    assert asked.status_code == 200, asked.text

    adviser = await browser(api, "adviser")
    board = await adviser.get("/dashboard")
    assert board.status_code == 200
    assert case_id in section(board.text, "to-approve")
    assert case_id in section(board.text, "all-open") and "withdraw" in board.text

    officer = await browser(api, "officer")
    own = await officer.get("/dashboard")
    assert case_id not in section(own.text, "to-approve")
    assert case_id in section(own.text, "yours-waiting")
    assert case_id in section(own.text, "mine")
    page = (await officer.get(f"/cases/{case_id}")).text
    assert "actions/approve" not in page and "actions/decline" in page
    page = (await adviser.get(f"/cases/{case_id}")).text
    assert "actions/approve" in page

    for who in ("auditor", "admin", "council"):
        refused = await (await browser(api, who)).get("/dashboard")
        assert refused.status_code == 403, who
        assert case_id not in refused.text
    anonymous = await (await browser(api)).get("/dashboard")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/sign-in?next=/dashboard"
