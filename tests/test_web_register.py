"""The public register (issue 18, item 7): every English council, read by anyone with no
sign-in, as a page, CSV, JSON and an Atom feed; on time, late and unpublished told apart;
filters as GET parameters; only what is public, escaped; a stopped projection answers 503."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from application.history_import import import_history
from application.register import COLUMNS, english
from domain import events as ev
from domain.councils import Council
from domain.vocabulary import CaseKind, VisitMode
from eventstore import EventStore, NewEvent
from eventstore.councils import import_councils
from eventstore.projections import READ_MODELS, Projector
from eventstore.schema import projections
from tests.api_support import Api
from tests.web_support import browser

TODAY = datetime.now(UTC).date()
WESTMINSTER, MANCHESTER, LEEDS = "E09000033", "E08000003", "E08000035"
HAMPSHIRE, CORNWALL, ODD = "E10000014", "E06000052", "E07000998"
ON_TIME_URL = "https://www.westminster.gov.uk/peer-challenge?a=1&b=2"
SECRETS = ("SECRET-SOURCE", "SECRET-REASON", "SECRET-OBJECTION", "SECRET-COMMENT",
           "Hidden Peername", "alert(", "insecure.example")
HISTORY = (
    "council,kind,visit_start,visit_end,report_published_on,report_url,"
    "action_plan_published_on,action_plan_url,progress_review_on,progress_review_published_on,"
    "progress_review_url,closed_on,source\n"
    f"{WESTMINSTER},corporate_peer_challenge,2023-03-06,2023-03-08,2023-05-01,{ON_TIME_URL},"
    "2023-07-01,https://www.westminster.gov.uk/plan,2024-01-15,2024-03-01,"
    "https://www.westminster.gov.uk/review,,SECRET-SOURCE note on the chief executive\n"
    f"{MANCHESTER},corporate_peer_challenge,2022-01-10,2022-01-12,2022-06-01,"
    "https://www.manchester.gov.uk/cpc,2022-07-01,,,,,2022-08-01,\n"
    f"{LEEDS},corporate_peer_challenge,2019-02-04,2019-02-06,,,,,,,,2019-12-01,\n"
    f"{HAMPSHIRE},corporate_peer_challenge,2024-06-03,2024-06-05,2024-08-01,"
    "https://www.hants.gov.uk/cpc,2024-10-01,,2025-03-03,2025-05-01,,,\n"
).encode()


async def _history(api: Api) -> EventStore:
    """Four imported challenges (on time, late, never published, on time) and one case built
    by hand, holding every kind of free text and a peer's name, whose report's address is
    http (never a link); plus a council whose register name needs escaping."""
    store = api.world.store
    import_councils(store, [Council(gss_code=ODD, code="ODD", name='Odd <b>Borough</b> & "Co"',
                                    short_name='Odd <b>Borough</b> & "Co"', type="NMD",
                                    nation="England", region="South East")])
    done = await import_history(store, api.world.env.client, HISTORY,
                                actor="case_officer:siân.jones",
                                task_queue=api.world.task_queue)
    assert len(done.imported) == 4 and not done.under_way
    team = [ev.PeerPlace(peer_id="p-1", name="Cllr Hidden Peername", role="lead_member",
                         home_council=WESTMINSTER)]
    steps: list[tuple[str, ev.Event]] = [
        ("case_officer:siân.jones", ev.CaseRequested(
            council=CORNWALL, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
            reason="<script>alert('SECRET-REASON')</script>", business_dates=True,
            requested_on=TODAY - timedelta(days=60), deadline_policy="standard")),
        ("case_officer:siân.jones", ev.PeerTeamProposed(team=team, selected_by="officer")),
        (f"council:{CORNWALL}", ev.PeerObjectedTo(peer_id="p-1", reason="SECRET-OBJECTION")),
        ("case_officer:siân.jones", ev.PeerTeamConfirmed(team=team)),
        ("case_officer:siân.jones", ev.VisitHeld(mode=VisitMode.ON_SITE,
                                                started_on=TODAY - timedelta(days=30),
                                                ended_on=TODAY - timedelta(days=28))),
        (f"council:{CORNWALL}", ev.FactualAccuracyCommentsReceived(comments="SECRET-COMMENT")),
        (f"council:{CORNWALL}", ev.ReportPublished(report_version=1,
                                                  published_on=TODAY - timedelta(days=5),
                                                  url="http://insecure.example/report")),
    ]
    now = datetime.now(UTC)
    store.append(f"cpc-{CORNWALL}-{TODAY.year}", 0, [
        NewEvent.of(event, event_id=str(uuid.uuid4()), occurred_at=now, actor=actor)
        for actor, event in steps])
    Projector(store).catch_up()
    return store


def row_of(page: str, gss: str) -> str:
    """The table row of one council."""
    for row in page.split('<tr class="govuk-table__row">')[1:]:
        if f'id="{gss}"' in row:
            return row.split("</tr>")[0]
    raise AssertionError(f"no row for {gss}")


def councils_in(page: str) -> set[str]:
    table = page.split('id="register"', 1)[1] if 'id="register"' in page else ""
    return set(re.findall(r'<th scope="row" class="govuk-table__header" id="([A-Z0-9]+)"',
                          table))


def href(entry: ET.Element) -> str:
    link = entry.find("{http://www.w3.org/2005/Atom}link")
    assert link is not None
    return link.get("href", "")


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_anyone_reads_who_published_on_time_late_or_not(api: Api) -> None:
    store = await _history(api)
    reader = await browser(api)
    page = await reader.get("/register")
    assert page.status_code == 200, page.text
    text = page.text
    assert councils_in(text) == {c.gss_code for c in english(store)}
    assert f"{len(english(store))} of {len(english(store))} councils" in text

    westminster = row_of(text, WESTMINSTER)
    assert "Westminster" in westminster and "8 March 2023" in westminster
    assert westminster.count("On time") == 3
    assert 'href="https://www.westminster.gov.uk/peer-challenge?a=1&amp;b=2"' in westminster
    assert "Held 15 January 2024" in westminster and "By 8 March 2028" in westminster

    manchester = row_of(text, MANCHESTER)
    assert "49 days late" in manchester and "18 days late" in manchester
    assert "Due now" in manchester and "Closed without one" in manchester

    leeds = row_of(text, LEEDS)
    assert leeds.count("Not published") == 2 and "Overdue" in leeds
    assert "href" not in leeds

    cornwall = row_of(text, CORNWALL)
    assert "On time" in cornwall and "Not yet due" in cornwall
    assert "href" not in cornwall  # its report's address is http: no link

    croydon = row_of(text, "E09000008")
    assert "None known" in croydon and "Due now" in croydon

    odd = row_of(text, ODD)
    assert "Odd &lt;b&gt;Borough&lt;/b&gt; &amp; &#34;Co&#34;" in odd
    assert "<b>Borough" not in text


async def test_the_filters_work_without_javascript_and_the_downloads_keep_them(
        api: Api) -> None:
    await _history(api)
    reader = await browser(api)
    late = await reader.get("/register", params={"late": "yes"})
    assert councils_in(late.text) == {MANCHESTER, LEEDS}
    assert 'href="/register.csv?late=yes"' in late.text
    assert 'value="yes" checked' in late.text

    london = await reader.get("/register", params={"region": "London"})
    assert councils_in(london.text) == {WESTMINSTER, "E09000008"}
    assert '<option value="London" selected>' in london.text

    metropolitan = await reader.get("/register", params={"type": "MD", "late": "yes"})
    assert councils_in(metropolitan.text) == {MANCHESTER, LEEDS}
    county = await reader.get("/register", params={"type": "CTY"})
    assert councils_in(county.text) == {HAMPSHIRE, "E10000020"}

    unknown = await reader.get("/register", params={"region": "Atlantis"})
    assert unknown.status_code == 200 and len(councils_in(unknown.text)) > 10

    for params in ({}, {"late": "yes"}, {"region": "London"}, {"type": "MD", "late": "yes"}):
        shown = councils_in((await reader.get("/register", params=params)).text)
        table = await reader.get("/register.csv", params=params)
        assert table.headers["content-type"].startswith("text/csv")
        rows = csv_rows(table.text)
        assert table.text.splitlines()[0] == ",".join(COLUMNS)
        assert {r["gss_code"] for r in rows} == shown
        data = await reader.get("/register.json", params=params)
        assert data.headers["content-type"] == "application/json"
        body: dict[str, Any] = data.json()
        assert {r["gss_code"] for r in body["rows"]} == shown
        assert body["filter"]["late_or_unpublished_only"] == ("late" in params)

    by_code = {r["gss_code"]: r for r in csv_rows((await reader.get("/register.csv")).text)}
    assert by_code[MANCHESTER]["report_status"] == "late"
    assert by_code[MANCHESTER]["report_days_late"] == "49"
    assert by_code[LEEDS]["report_status"] == "not_published"
    assert by_code[WESTMINSTER]["report_url"] == ON_TIME_URL
    assert by_code[CORNWALL]["report_url"] == "" and by_code[CORNWALL]["report_status"] == "on_time"
    assert by_code["E09000008"]["last_challenge_visit_ended_on"] == ""


async def test_the_atom_feed_lists_publications_and_lapses_newest_first(api: Api) -> None:
    await _history(api)
    reader = await browser(api)
    answer = await reader.get("/register.atom")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.fromstring(answer.content)
    assert feed.tag == f"{atom}feed"
    for field in ("id", "title", "updated"):
        assert feed.findtext(f"{atom}{field}")
    assert feed.find(f"{atom}link[@rel='self']") is not None
    entries = feed.findall(f"{atom}entry")
    assert 10 <= len(entries) <= 200
    for entry in entries:
        for field in ("id", "title", "updated"):
            assert entry.findtext(f"{atom}{field}"), field
        assert href(entry).startswith(("https://", "http://web.test/register#"))
    updated = [e.findtext(f"{atom}updated") or "" for e in entries]
    assert updated == sorted(updated, reverse=True)
    assert len({e.findtext(f"{atom}id") for e in entries}) == len(entries)
    titles = [e.findtext(f"{atom}title") or "" for e in entries]
    assert any("Westminster published its peer challenge report (on time)" in t for t in titles)
    assert any("Manchester published its peer challenge report (49 days late)" in t
               for t in titles)
    assert any("Leeds did not publish its peer challenge report by 8 May 2019" in t
               for t in titles)
    links = {href(e) for e in entries}
    assert ON_TIME_URL in links and "http://web.test/register#E08000035" in links
    assert feed.findtext(f"{atom}updated") == updated[0]


async def test_nothing_private_reaches_the_page_or_the_downloads(api: Api) -> None:
    await _history(api)
    reader = await browser(api)
    for url in ("/register", "/register?late=yes", "/register.csv", "/register.json",
                "/register.atom"):
        answer = await reader.get(url)
        assert answer.status_code == 200
        for secret in SECRETS:
            assert secret not in answer.text, (url, secret)
    assert "<script>" not in (await reader.get("/register")).text


async def test_a_stopped_projection_gives_503_in_one_line(api: Api) -> None:
    store = await _history(api)
    with store.engine.begin() as conn:
        conn.execute(projections.update().where(projections.c.name == READ_MODELS)
                     .values(problem="case cpc-E06000052-2026: version 3 does not link"))
    reader = await browser(api)
    page = await reader.get("/register")
    assert page.status_code == 503
    assert "The register cannot be shown just now" in page.text
    why = re.search(r'<p class="govuk-body" id="why">(.*?)</p>', page.text, re.S)
    assert why is not None and "\n" not in why.group(1)
    assert "Traceback" not in page.text and "cpc-E06000052" not in page.text
    for url in ("/register.csv", "/register.json", "/register.atom"):
        answer = await reader.get(url)
        assert answer.status_code == 503 and answer.text.count("\n") == 1, url


@pytest.mark.parametrize("url", ["/register", "/register.csv", "/register.json",
                                 "/register.atom"])
async def test_an_empty_store_still_lists_every_council(api: Api, url: str) -> None:
    reader = await browser(api)
    answer = await reader.get(url)
    assert answer.status_code == 200
    if url == "/register":
        assert councils_in(answer.text) == {c.gss_code for c in english(api.world.store)}
        assert "None known" in answer.text


def test_a_due_date_is_due_now_in_its_last_year_and_overdue_after() -> None:
    from application.register import NextDue, row_of

    council = english_council()
    summary = {"visit_ended_on": date(2021, 6, 1), "next_due_on": date(2026, 6, 1),
               "stage": "closed", "corporate_challenges": 1, "report_due_on": date(2021, 8, 31),
               "report_published_on": None, "report_url": None,
               "action_plan_due_on": date(2021, 10, 31), "action_plan_published_on": None,
               "action_plan_url": None, "progress_review_on": None,
               "progress_review_published_on": None, "progress_review_url": None}
    assert row_of(council, summary, date(2025, 5, 31)).next_due == NextDue.NOT_YET_DUE
    assert row_of(council, summary, date(2025, 6, 1)).next_due == NextDue.DUE_NOW
    assert row_of(council, summary, date(2026, 6, 1)).next_due == NextDue.DUE_NOW
    assert row_of(council, summary, date(2026, 6, 2)).next_due == NextDue.OVERDUE
    closed = row_of(council, summary, date(2026, 6, 2))
    assert closed.progress_review is not None
    assert closed.progress_review.words == "Not required" and closed.late_or_unpublished


def english_council() -> Council:
    from domain.councils import BUILT_IN_COUNCILS

    return BUILT_IN_COUNCILS[WESTMINSTER]


def test_the_demo_history_shows_every_kind_of_row() -> None:
    """`cases demo` imports cli/demo_history.csv: the register then has councils on time,
    late and never published, due and overdue; only Birmingham's finance challenge is under
    way (the demo's own corporate cases hold Croydon's and Birmingham's corporate slots, and
    its escalations reach the people the demo's own lapse reaches)."""
    from application.history_import import parse_file
    from application.register import NextDue, Verdict, publication
    from cli.demo import DEMO_HISTORY
    from domain.councils import BUILT_IN_COUNCILS
    from domain.read_models import REPORT_DAYS, years_after

    today = date(2026, 12, 2)
    rows = parse_file(DEMO_HISTORY.read_bytes(), dict(BUILT_IN_COUNCILS),
                      datetime.combine(today, datetime.min.time(), UTC))
    assert [(r.council, r.kind) for r in rows if not r.finished] == [
        ("E08000025", CaseKind.FINANCE)]
    last = {}
    for row in sorted(rows, key=lambda r: r.visit_end):
        if row.kind == CaseKind.CORPORATE_PEER_CHALLENGE:
            last[row.council] = row
    verdicts = {publication(r.visit_end + timedelta(days=REPORT_DAYS), r.report_published_on,
                            r.report_url, today).verdict for r in last.values()}
    assert {Verdict.ON_TIME, Verdict.LATE, Verdict.NOT_PUBLISHED} <= verdicts
    next_due = {NextDue.OVERDUE if today > years_after(r.visit_end, 5) else
                NextDue.DUE_NOW if today >= years_after(r.visit_end, 4) else NextDue.NOT_YET_DUE
                for r in last.values()}
    assert next_due == set(NextDue)
    assert set(BUILT_IN_COUNCILS) - set(last)  # and one with none known
