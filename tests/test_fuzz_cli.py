"""Every CLI command fuzzed with bad input: exit 2 with a specific message, nothing written.

A real worker runs in a subprocess and one case waits at `requested`, so the fuzzed actions
reach the workflow's validator too, not only the command line's own checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from application.users import add_user
from cli.actions import ACTIONS
from domain.actors import Role
from eventstore import open_store
from runtime.temporal import connect
from tests.support import in_thread, run_cli
from workflows.messages import workflow_id_for_case

NASTY_TEXT = [
    "", " ", "x" * 5000, "bell\x07", "nul\x00byte", "esc\x1b[31mred", "\u202eevil",
    "'; DROP TABLE events; --", "1 OR 1=1", "-5", "1e9", "null", "[]", "{}",
]
NICE_TEXT = ["A reason", "Siân's report ☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
NASTY_DATES = ["2026-02-30", "26-01-01", "0001-01-01", "9999-12-31", "yesterday", "2026/01/01",
               "2026-13-01", "", "1900-01-01", "2199-01-01"]
NASTY_COUNCILS = ["", "E0600000", "E060000011", "X06000001", "e06000001", "E06000001'--",
                  "Hartlepool", "E06000001\x00", "E99999999"]
SUBJECT = "E06000047"
UNKNOWN_CASES = ["cpc-E06000001-1999", "'; DROP TABLE events;--", "ü" * 200, "..", "cpc",
                 "xyz-E06000001-2026", "cpc-E99999999-2026"]
# At `requested`, only `scope` and `withdraw` could be accepted; they are fuzzed elsewhere.
REFUSED_AT_REQUESTED = [a for a in ACTIONS if a not in ("scope", "withdraw")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def _value_for(option: str, draw: st.DrawFn) -> str:
    today = datetime.now(UTC).date().isoformat()
    if option.endswith(("-on", "-from", "-to")):
        return draw(st.sampled_from([*NASTY_DATES, *[today] * 6]))
    if option == "--peer":
        return draw(st.sampled_from(["p|Name|lead_member|E09000008", "p|Name|king|E09000008",
                                     "only-id", "p|Name|member|E06000047", "||||"]))
    if option in ("--mode", "--visit-mode"):
        return draw(st.sampled_from(["on_site", "remote", "hybrid", ""]))
    if option == "--url":
        return draw(st.sampled_from(["https://example.org/r", "javascript:alert(1)", "ftp://x"]))
    if option == "--document-sha256":
        return draw(st.sampled_from(["ab" * 32, "cd" * 32, "AB" * 32, "xyz", ""]))
    if option == "--document":
        return draw(st.sampled_from(["/nonexistent/report.pdf", "/"]))
    return draw(st.sampled_from(NASTY_TEXT + NICE_TEXT * 6))


def _options(action: str) -> list[str]:
    fields = [n for n in ACTIONS[action].model_fields if n not in ("action", "actor", "case_id")]
    options = ["--" + n.replace("_", "-") for n in fields]
    return ["--peer" if o == "--team" else o for o in options]


@st.composite
def bad_command_lines(draw: st.DrawFn, open_case: str) -> list[str]:
    kind = draw(st.sampled_from(["start", "status", "history", "verify", *ACTIONS]))
    if kind == "start":
        args = ["start", "--council", draw(st.sampled_from(NASTY_COUNCILS)),
                "--kind", draw(st.sampled_from(["corporate_peer_challenge", "finance", "x"])),
                "--reason", draw(st.sampled_from(NASTY_TEXT + NICE_TEXT))]
        if draw(st.booleans()):
            args += ["--budget-gap-pence", draw(st.sampled_from(["-1", "1.5", "£4m", "10"]))]
        return args
    if kind in REFUSED_AT_REQUESTED:
        case = draw(st.sampled_from([*[open_case] * 8, *UNKNOWN_CASES]))
    else:
        case = draw(st.sampled_from(UNKNOWN_CASES))
    args = [kind, case]
    if kind in ACTIONS:
        options = _options(kind)
        chosen = draw(st.lists(st.sampled_from(options), min_size=len(options) - 1,
                               max_size=len(options), unique=True)) if options else []
        for option in chosen:
            args += [option, _value_for(option, draw)]
    if draw(st.booleans()):
        args += ["--actor", draw(st.sampled_from(["officer:", "council x", "mayor:me",
                                                  "officer:a", f"council:{SUBJECT}"]))]
    return args


class World:
    def __init__(self, env: WorkflowEnvironment, database: Path) -> None:
        self.address = env.client.service_client.config.target_host
        self.database = database
        self.api_port = free_port()
        self.environ = {"CASES_DATABASE_URL": f"sqlite:///{database}",
                        "TEMPORAL_ADDRESS": self.address,
                        "CASES_API_URL": f"http://127.0.0.1:{self.api_port}",
                        "CASES_TOKEN": ""}
        self.case_id = ""

    def history_length(self) -> int:
        async def count() -> int:
            client: Client = await connect(target_host=self.address)
            handle = client.get_workflow_handle(workflow_id_for_case(self.case_id))
            return len((await handle.fetch_history()).events)

        return in_thread(lambda: asyncio.run(count()))


@pytest.fixture(scope="module")
def world(dev_server_env: WorkflowEnvironment,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    database = tmp_path_factory.mktemp("fuzz") / "cases.db"
    world = World(dev_server_env, database)
    in_thread(lambda: open_store(f"sqlite:///{database}").migrate())
    saved = {k: os.environ.get(k) for k in world.environ}
    os.environ.update(world.environ)
    bin_dir = Path(sys.executable).parent
    worker = subprocess.Popen([str(bin_dir / "cases-worker")],
                              env=dict(os.environ), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    api = subprocess.Popen([str(bin_dir / "cases"), "serve", "--port", str(world.api_port)],
                           env=dict(os.environ), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        os.environ["CASES_TOKEN"] = in_thread(lambda: add_user(
            open_store(f"sqlite:///{database}"), "fuzz", Role.CASE_OFFICER))
        wait_for_port(world.api_port)
        assert run_cli(["start", "--council", SUBJECT, "--kind", "corporate_peer_challenge",
                        "--reason", "Fuzz target"]) == 0
        world.case_id = f"cpc-{SUBJECT}-{datetime.now(UTC).year}"
        yield world
    finally:
        for process in (api, worker):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_command_lines_exit_2_and_write_nothing(
    data: Any, world: World, capsys: pytest.CaptureFixture[str],
) -> None:
    argv = data.draw(bad_command_lines(world.case_id))
    store = open_store(f"sqlite:///{world.database}")
    before = (store.last_position(), world.history_length())
    code = run_cli(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    event("refused: --actor is no option" if "--actor" in err else
          "refused by the case's rules" if "): cannot" in err else
          "refused: no such case" if "no case" in err or "not known" in err else
          "refused before sending")
    assert err.strip() and "Traceback" not in err, err
    assert (store.last_position(), world.history_length()) == before, argv
    store.dispose()
