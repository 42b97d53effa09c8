"""The auditor's view (issue 18, item 6): a case as it stood at the end of any day, what changed
between two days, the chain's verdict with its head, and the bundle to verify elsewhere, all
read from the store. Auditors, officers and advisers may look; councils and admins may not."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, timedelta
from pathlib import Path

from domain.timeline import end_of_day
from eventstore.projections import Projector
from tests.api_support import COUNCIL, OTHER, Api, scoped_case
from tests.test_bundle_attacks import tamper_store
from tests.test_domain_timeline import full_journey
from tests.test_eventstore_export import run_verifier, store_history
from tests.web_support import browser

EVENT_ROW = 'class="govuk-table__row timeline-event"'
JOURNEY = "cpc-E06000001-2025"


def events_shown(html: str) -> int:
    return html.count(EVENT_ROW)


async def case_over_two_days(api: Api) -> tuple[str, date]:
    """A case requested and scoped one day, and a withdrawal asked two days later (its reason
    free text with markup); the day the case was scoped."""
    case_id = await scoped_case(api)
    scoped_on = api.world.store.read_case(case_id)[-1].occurred_at.date()
    await api.world.env.sleep(timedelta(days=2))
    asked = await api.act("officer", case_id, action="withdraw",
                          reason="Intervention <b>instead</b>")
    assert asked.status_code == 200, asked.text
    return case_id, scoped_on


async def test_councils_and_admins_cannot_audit(api: Api) -> None:
    case_id = await scoped_case(api)
    for who in ("council", "other-council", "admin"):
        person = await browser(api, who)
        for url in ("/audit", f"/audit/cases/{case_id}", f"/audit/cases/{case_id}/diff",
                    f"/audit/cases/{case_id}/bundle"):
            refused = await person.get(url)
            assert refused.status_code == 403, (who, url)
            assert case_id not in refused.text and "Budget gap" not in refused.text
        await person.aclose()
    for who in ("auditor", "officer", "adviser"):
        person = await browser(api, who)
        assert (await person.get("/audit")).status_code == 200, who
        assert (await person.get(f"/audit/cases/{case_id}")).status_code == 200, who
        await person.aclose()


async def test_a_case_as_it_stood_at_the_end_of_an_earlier_day(api: Api) -> None:
    case_id, scoped_on = await case_over_two_days(api)
    stored = api.world.store.read_case(case_id)
    then = sum(1 for e in stored if e.occurred_at <= end_of_day(scoped_on))
    assert 0 < then < len(stored)
    auditor = await browser(api, "auditor")

    now = await auditor.get(f"/audit/cases/{case_id}")
    assert now.status_code == 200
    assert events_shown(now.text) == len(stored) and "As it stands now" in now.text
    earlier = await auditor.get(f"/audit/cases/{case_id}?as_of={scoped_on.isoformat()}")
    assert earlier.status_code == 200
    assert events_shown(earlier.text) == then
    assert f"{then} of {len(stored)} event(s) recorded by then" in earlier.text
    assert "ApprovalRequested" not in earlier.text and "ApprovalRequested" in now.text
    before_it = await auditor.get(
        f"/audit/cases/{case_id}?as_of={(scoped_on - timedelta(days=400)).isoformat()}")
    assert "had not been requested by then" in before_it.text
    assert events_shown(before_it.text) == 0
    await auditor.aclose()


async def test_what_changed_between_two_days_is_listed_and_escaped(api: Api) -> None:
    case_id, scoped_on = await case_over_two_days(api)
    later = scoped_on + timedelta(days=3)
    officer = await browser(api, "officer")

    change = await officer.get(f"/audit/cases/{case_id}/diff",
                               params={"from": scoped_on.isoformat(), "to": later.isoformat()})
    assert change.status_code == 200, change.text
    assert events_shown(change.text) == 1 and "ApprovalRequested" in change.text
    assert "awaiting approval" in change.text  # the field that changed
    assert "<b>instead</b>" not in change.text and "&lt;b&gt;instead&lt;/b&gt;" in change.text
    same = await officer.get(f"/audit/cases/{case_id}/diff",
                             params={"from": scoped_on.isoformat(),
                                     "to": scoped_on.isoformat()})
    assert "the case did not change" in same.text and events_shown(same.text) == 0
    await officer.aclose()


async def test_bad_dates_are_refused_beside_their_field(api: Api) -> None:
    case_id = await scoped_case(api)
    auditor = await browser(api, "auditor")
    for given, said in (("2026-02-30", "The date must be a real date"),
                        ("yesterday", "Enter the date as YYYY-MM-DD"),
                        ("1066-10-14", "must be between 1990 and 2200")):
        page = await auditor.get(f"/audit/cases/{case_id}", params={"as_of": given})
        assert page.status_code == 422, given
        assert said in page.text and "govuk-input--error" in page.text
        assert 'href="#as_of"' in page.text and events_shown(page.text) == 0
    backwards = await auditor.get(f"/audit/cases/{case_id}/diff",
                                  params={"from": "2026-03-02", "to": "2026-03-01"})
    assert backwards.status_code == 422
    assert "The first date must be the same as or before the second date" in backwards.text
    half = await auditor.get(f"/audit/cases/{case_id}/diff", params={"from": "2026-03-02"})
    assert half.status_code == 422 and "Enter the second date as YYYY-MM-DD" in half.text
    await auditor.aclose()


async def test_an_unknown_case_is_not_found(api: Api) -> None:
    auditor = await browser(api, "auditor")
    for url in ("/audit/cases/cpc-E09000008-1999", "/audit/cases/cpc-E09000008-1999/diff",
                "/audit/cases/cpc-E09000008-1999/bundle", "/audit/cases/checkpoints",
                "/audit/cases/..%2Fetc"):
        assert (await auditor.get(url)).status_code == 404, url
    asked = await auditor.get("/audit", params={"case": "cpc-E09000008-1999"})
    assert asked.status_code == 404 and "no case with this id" in asked.text
    await auditor.aclose()


async def test_the_index_finds_a_case_and_lists_cases_by_council(api: Api) -> None:
    case_id = await scoped_case(api)
    store_history(api.world.store, full_journey(JOURNEY))
    Projector(api.world.store).catch_up()
    auditor = await browser(api, "auditor")

    found = await auditor.get("/audit", params={"case": case_id})
    assert found.status_code == 303 and found.headers["location"] == f"/audit/cases/{case_id}"
    every = await auditor.get("/audit")
    assert case_id in every.text and JOURNEY in every.text
    own = await auditor.get("/audit", params={"council": COUNCIL})
    assert case_id in own.text and JOURNEY not in own.text
    none = await auditor.get("/audit", params={"council": OTHER})
    assert case_id not in none.text and "No case is listed" in none.text
    bad = await auditor.get("/audit", params={"council": "<Croydon>"})
    assert bad.status_code == 422 and "GSS code, like E09000008" in bad.text
    assert "&lt;Croydon&gt;" in bad.text and "<Croydon>" not in bad.text
    await auditor.aclose()


async def test_the_verdict_says_intact_then_names_the_first_bad_event(api: Api) -> None:
    store = api.world.store
    store_history(store, full_journey(JOURNEY))
    version, head_hash = store.head(JOURNEY)
    auditor = await browser(api, "auditor")

    clean = await auditor.get(f"/audit/cases/{JOURNEY}")
    assert "Intact" in clean.text and "Tampered" not in clean.text
    assert f'<dd class="govuk-summary-list__value" id="head-version">{version}</dd>' in (
        clean.text)
    assert f'<code id="head-hash">{head_hash}</code>' in clean.text

    tamper_store(store, "UPDATE events SET actor = 'officer:mallory' WHERE case_id = ? "
                        "AND version = 3", JOURNEY)
    tampered = await auditor.get(f"/audit/cases/{JOURNEY}")
    assert tampered.status_code == 200
    assert "Intact" not in tampered.text
    assert re.search(r"Tampered: the first bad event is version 3 \(altered\)", tampered.text)
    assert "officer:mallory" in tampered.text  # the history is shown as stored, flagged
    assert (await auditor.get(f"/audit/cases/{JOURNEY}/diff")).status_code == 200
    await auditor.aclose()


async def test_a_tampered_case_is_exported_as_stored_and_its_verifier_says_where(
        api: Api, tmp_path: Path) -> None:
    store = api.world.store
    store_history(store, full_journey(JOURNEY))
    tamper_store(store, "UPDATE events SET actor = 'officer:mallory' WHERE case_id = ? "
                        "AND version = 3", JOURNEY)
    auditor = await browser(api, "auditor")
    download = await auditor.get(f"/audit/cases/{JOURNEY}/bundle")
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as bundle:
        bundle.extractall(tmp_path)
    checked = run_verifier(tmp_path / f"{JOURNEY}-bundle")
    assert checked.returncode == 3, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"case {JOURNEY} version 3: altered")
    await auditor.aclose()


async def test_the_bundle_downloads_as_a_zip_its_own_verifier_passes(
        api: Api, tmp_path: Path) -> None:
    case_id = await scoped_case(api)
    officer = await browser(api, "adviser")

    download = await officer.get(f"/audit/cases/{case_id}/bundle")
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/zip"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="{case_id}-bundle.zip"')
    with zipfile.ZipFile(io.BytesIO(download.content)) as bundle:
        names = set(bundle.namelist())
        assert {f"{case_id}-bundle/{name}" for name in
                ("events.json", "RULE.md", "verify.py", "MANIFEST.json")} <= names
        bundle.extractall(tmp_path)
    checked = run_verifier(tmp_path / f"{case_id}-bundle")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    version, head_hash = api.world.store.head(case_id)
    assert checked.stdout.startswith(
        f"case {case_id}: intact, versions 1 to {version}; head hash {head_hash}")
    await officer.aclose()
