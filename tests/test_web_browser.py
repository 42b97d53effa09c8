"""The pages in real Chromium (issue 18): sign in, the public register, each page checked
with axe-core and kept as a screenshot."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser

from application.history_import import import_history
from application.users import set_password
from cli import demo
from domain.peers import demo_pool
from domain.vocabulary import CaseKind
from eventstore.peers import import_pool
from eventstore.projections import Projector
from tests.api_support import COUNCIL, PASSWORD, Api
from tests.browser_support import Visitor, chromium, site, visitor
from workflows.messages import workflow_id_for

__all__ = ["chromium", "site"]  # fixtures, used by name


async def test_an_officer_signs_in_in_chromium(api: Api, chromium: Browser, site: str) -> None:
    set_password(api.world.store, "siân.jones", PASSWORD)
    officer = await visitor(chromium, site, "officer")
    await officer.go("/sign-in")
    await officer.page.get_by_label("User name").fill("siân.jones")
    await officer.page.get_by_label("Password").fill("not it")
    await officer.page.get_by_role("button", name="Sign in").click()
    await officer.look()
    assert "Enter a user name and password that match an account" in (
        await officer.page.content())
    await officer.sign_in("siân.jones", PASSWORD)
    assert "Signed in as" in await officer.page.inner_text("#signed-in-as")


async def _act(person: Visitor, action: str, fields: dict[str, str] | None = None,
               dates: dict[str, date] | None = None, radios: dict[str, str] | None = None
               ) -> None:
    """Open the case page's form for `action`, fill it as a person would, send it, and check
    the page it lands on (no error shown)."""
    box = person.page.locator(f"details#{action.replace('_', '-')}")
    await box.locator("summary").click()
    form = box.locator("form")
    for name, value in (fields or {}).items():
        await form.locator(f"[name='{name}']").fill(value)
    for name, day in (dates or {}).items():
        await form.locator(f"input[name='{name}-day']").fill(str(day.day))
        await form.locator(f"input[name='{name}-month']").fill(str(day.month))
        await form.locator(f"input[name='{name}-year']").fill(str(day.year))
    for name, value in (radios or {}).items():
        await form.locator(f"input[name='{name}'][value='{value}']").check()
    await form.locator("button").click()
    await person.page.wait_for_load_state()
    await person.look()
    assert await person.page.locator(".govuk-error-summary").count() == 0, (
        action, await person.page.inner_text("main"))


async def test_an_officer_a_council_and_an_auditor_take_a_case_to_closed_in_chromium(
        api: Api, chromium: Browser, site: str) -> None:
    store = api.world.store
    today = (await api.world.env.get_current_time()).date()
    import_pool(store, demo_pool(today), "demo pool")
    for name in ("siân.jones", "sam.lee", "ada.lovelace"):
        set_password(store, name, PASSWORD)
    officer = await visitor(chromium, site, "officer")
    council = await visitor(chromium, site, "council")
    auditor = await visitor(chromium, site, "auditor")

    await officer.sign_in("siân.jones", PASSWORD)
    await officer.go("/cases/new")
    await officer.page.get_by_label("Council").fill(COUNCIL)
    await officer.page.locator("input[name='kind'][value='corporate_peer_challenge']").check()
    await officer.page.locator("[name='reason']").fill("Budget gap <flagged> by the s151 officer")
    await officer.page.get_by_role("button", name="Start the case").click()
    await officer.page.wait_for_load_state()
    await officer.look()
    case_path = urlsplit(officer.page.url).path
    case_id = case_path.rsplit("/", 1)[-1]
    api.leave_none_running(f"improvement-case-cpc-{COUNCIL}")
    assert "Budget gap <flagged>" in await officer.page.inner_text("main")

    await _act(officer, "scope", {"scope": "finance, governance"}, radios={
        "visit_mode": "on_site"})
    await _act(officer, "select_team", dates={"visit_from": today,
                                              "visit_to": today + timedelta(days=2)})
    await _act(officer, "confirm_team")
    await _act(officer, "schedule_visit", dates={"starts_on": today, "ends_on": today},
               radios={"mode": "on_site"})
    await _act(officer, "record_visit", dates={"started_on": today, "ended_on": today})
    await _act(officer, "give_feedback", {"summary": "Strong leadership; plan the money."},
               dates={"given_on": today})
    await _act(officer, "draft_report", {"document_sha256": "a" * 64}, dates={"sent_on": today})

    await council.sign_in("sam.lee", PASSWORD)
    await council.go("/council")
    assert case_id in await council.page.inner_text("main")
    await council.go(case_path)
    await _act(council, "factual_accuracy_comments", {"comments": "Paragraph 4: £12m."})

    await officer.go(case_path)
    await _act(officer, "finalise_report", {"document_sha256": "b" * 64},
               dates={"final_on": today})
    await council.go(case_path)
    await _act(council, "publish_report", {"url": "https://example.org/report"},
               dates={"published_on": today})
    await _act(council, "publish_action_plan", {"url": "https://example.org/plan"},
               dates={"published_on": today})
    await officer.go(case_path)
    await _act(officer, "hold_progress_review", dates={"started_on": today, "ended_on": today})
    await council.go(case_path)
    await _act(council, "publish_progress_review", {"url": "https://example.org/review"},
               dates={"published_on": today})
    await officer.go(case_path)
    await _act(officer, "close", {"summary": "Plan delivered."})
    assert "closed" in (await officer.page.inner_text("main")).lower()
    assert [e.type for e in store.read_case(case_id)][-1] == "CaseClosed"

    await auditor.sign_in("ada.lovelace", PASSWORD)
    await auditor.go(f"/audit/cases/{case_id}")
    assert "intact" in (await auditor.page.inner_text("main")).lower()
    await auditor.go(f"/audit/cases/{case_id}?as_of={today}")
    await auditor.go(f"/audit/cases/{case_id}/diff?from={today - timedelta(days=1)}"
                     f"&to={today}")
    await council.go(f"/council/cases/{case_id}")
    await council.go("/dashboard")  # not a council's page: refused, and no data shown
    assert "You cannot see this page" in await council.page.inner_text("main")


async def test_the_register_shows_the_demos_late_and_unpublished_councils(
        api: Api, chromium: Browser, site: str) -> None:
    """The demo's history (cli/demo_history.csv), imported as `cases demo` does, read by a
    member of the public in Chromium."""
    data = (Path(demo.__file__).parent / "demo_history.csv").read_bytes()
    api.leave_none_running(workflow_id_for(CaseKind.FINANCE, "E08000025"))
    await import_history(api.world.store, api.world.env.client, data,
                         actor="case_officer:siân.jones", task_queue=api.world.task_queue)
    Projector(api.world.store).catch_up()
    public = await visitor(chromium, site, "register")
    await public.go("/register")

    async def row(name: str) -> str:
        return await public.page.locator("tbody tr", has_text=name).first.inner_text()

    assert "Not published" in await row("Bristol")
    leeds = await row("Leeds")
    assert "days late" in leeds and "Overdue" in leeds
    assert "On time" in await row("Manchester")
    assert "Not published" in await row("Basingstoke")  # its action plan
    await public.page.get_by_label("Late or unpublished only").check()
    await public.page.get_by_role("button", name="Filter").click()
    await public.page.wait_for_load_state()
    await public.look()
    shown = await public.page.locator("tbody").inner_text()
    assert "Bristol" in shown and "Leeds" in shown and "Manchester" not in shown
