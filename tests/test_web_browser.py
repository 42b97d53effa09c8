"""The pages in real Chromium (issue 18): sign in, the public register, each page checked
with axe-core and kept as a screenshot."""

from __future__ import annotations

from playwright.async_api import Browser

from application.users import set_password
from tests.api_support import PASSWORD, Api
from tests.browser_support import chromium, site, visitor

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
