"""Real Chromium for the pages' tests: Debian's `chromium` package, driven by Playwright for
Python with its executable path set (nothing downloads a browser), against the API and its
pages served by uvicorn on a free port beside the test's worker.

Screenshots of each page a test visits are kept under SCREENSHOTS (printed at the end of the
run); axe-core (from web/node_modules, installed by `make`) checks each page for accessibility
problems, in a browser context that lets the test inject it past the pages' own policy."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from api.app import Engine, create_app
from api.server import serving
from api.settings import ApiSettings
from tests.api_support import Api

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("CASES_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
"""As root on a machine with no internet: without the networking flags Chromium's own
connections are refused, many at a time."""
SERIOUS = {"serious", "critical"}


def chromium_path() -> str | None:
    return os.environ.get("CASES_CHROMIUM") or shutil.which("chromium")


def need_chromium() -> str:
    """The browser, or a skip (a failure when CASES_REQUIRE_CHROMIUM=1, as in CI)."""
    path = chromium_path()
    if path is None or not AXE.is_file():
        why = ("Debian's chromium is not installed (`apt-get install -y chromium`)"
               if path is None else "axe-core is not installed (run `make`)")
        if os.environ.get("CASES_REQUIRE_CHROMIUM") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest_asyncio.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    path = need_chromium()
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's pages only
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield browser
        await browser.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest_asyncio.fixture
async def site(api: Api) -> AsyncIterator[str]:
    """The API and its pages over HTTP, on the `api` fixture's store, worker and Temporal."""
    app = create_app(Engine(store=api.world.store, temporal=api.world.env.client,
                            task_queue=api.world.task_queue),
                     ApiSettings(session_secret=b"k" * 32, secure_cookies=False,
                                 sign_in_rate="100/minute"))
    async with serving(app, "127.0.0.1", _free_port()) as url:
        yield url


@dataclass
class Visitor:
    """One person at a browser: their own context (cookies), pages checked as they go."""

    page: Page
    base: str
    name: str
    shots: list[Path] = field(default_factory=list)

    async def go(self, path: str) -> None:
        await self.page.goto(self.base + path)
        await self.look()

    async def look(self) -> None:
        """Keep a screenshot of the page as it is now, and check it with axe-core."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", self.page.url.split("://", 1)[-1].split("/", 1)[-1]
                      .lower()).strip("-") or "home"
        shot = SCREENSHOTS / f"{self.name}-{len(self.shots):02d}-{slug[:60]}.png"
        await self.page.screenshot(path=str(shot), full_page=True)
        self.shots.append(shot)
        await check_accessibility(self.page)

    async def sign_in(self, user: str, password: str) -> None:
        await self.go("/sign-in")
        await self.page.get_by_label("User name").fill(user)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.wait_for_load_state()
        await self.look()


async def check_accessibility(page: Page) -> None:
    """axe-core on the page: no serious or critical violation (WCAG 2.2 AA rules)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})")
    serious = [f"{v['id']} ({v['impact']}): {v['help']} — "
               f"{[n['target'] for n in v['nodes']][:3]}"
               for v in result["violations"] if v.get("impact") in SERIOUS]
    assert not serious, f"{page.url}: " + "; ".join(serious)


async def visitor(browser: Browser, base: str, name: str) -> Visitor:
    """A new person; `bypass_csp` only so that the test can inject axe-core."""
    context = await browser.new_context(bypass_csp=True, viewport={"width": 1280,
                                                                     "height": 900})
    return Visitor(page=await context.new_page(), base=base, name=name)
