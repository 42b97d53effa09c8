"""The pages' foundation (issue 18): sign in and out through the form, the security headers
on every page, forms refused without their CSRF token, and no page of a signed-in role shown
to anyone else."""

from __future__ import annotations

from application.users import set_password
from tests.api_support import PASSWORD, Api
from tests.web_support import browser, csrf_of


async def test_signing_in_and_out_through_the_form(api: Api) -> None:
    person = await browser(api)
    page = await person.get("/sign-in?next=/dashboard")
    assert page.status_code == 200 and "Sign in" in page.text
    wrong = await person.http.post("/sign-in", data={
        "csrf_token": csrf_of(page.text), "name": "siân.jones", "password": "nope",
        "next": "/dashboard"})
    assert wrong.status_code == 401
    assert "Enter a user name and password that match an account" in wrong.text
    officer = await browser(api, "officer")
    home = await officer.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/dashboard"
    out = await officer.submit("/sign-out", "/sign-out", {})
    assert out.status_code == 303
    assert (await officer.get("/")).headers["location"] == "/register"


async def test_a_form_without_its_csrf_token_changes_nothing(api: Api) -> None:
    person = await browser(api)
    refused = await person.http.post("/sign-in", data={"name": "siân.jones",
                                                       "password": "correct horse battery"})
    assert refused.status_code == 403 and "Nothing was changed" in refused.text
    assert (await person.get("/")).headers["location"] == "/register"


async def test_a_next_address_never_leaves_the_site(api: Api) -> None:
    person = await browser(api)
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        page = await person.get(f"/sign-in?next={elsewhere}")
        set_password(api.world.store, "siân.jones", PASSWORD)
        signed = await person.http.post("/sign-in", data={
            "csrf_token": csrf_of(page.text), "name": "siân.jones", "password": PASSWORD,
            "next": elsewhere})
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"


async def test_every_page_sends_a_policy_with_no_inline_script(api: Api) -> None:
    person = await browser(api)
    page = await person.get("/sign-in")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and "<script " not in page.text.replace(
        '<script type="module" src="/static/app.mjs">', "")
    assert (await person.get("/govuk/govuk-frontend.min.css")).status_code == 200
    assert (await person.get("/static/app.mjs")).status_code == 200


def test_what_pages_keep_is_bounded_and_forgotten_whole() -> None:
    from web.site import Kept

    kept: Kept[int, str] = Kept(3)
    for n in range(3):
        assert kept.keep(n, f"page {n}") == f"page {n}"
    assert [kept.get(n) for n in range(3)] == ["page 0", "page 1", "page 2"]
    kept.keep(3, "page 3")  # the limit reached: the old ones go, all at once
    assert [kept.get(n) for n in range(4)] == [None, None, None, "page 3"]
