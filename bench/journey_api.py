"""The API as deployed, for `bench/journey.py --through-api`: `cases serve` in a process of its
own, the users it signs in, and the journey's commands as those users send them.

Both ways of the comparison act as the same people: a case officer (`bench-officer`), an LGA
adviser (`bench-adviser`, who approves the hand-picked team) and each council's contact
(`contact-GSS`). Through the API the actor is made from the signed-in user; the direct client
is given the very same actor, so both ways record the same events.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

from application.journey import journey
from application.users import add_user
from domain.actors import Role, principal_for
from domain.commands import AnyCommand
from eventstore import EventStore

OFFICER = principal_for(Role.CASE_OFFICER, "bench-officer")
ADVISER = principal_for(Role.LGA_ADVISER, "bench-adviser")


def contact(council: str) -> str:
    """The actor of the council's contact, as the API records them."""
    return principal_for(Role.COUNCIL, f"contact-{council}", council).actor


def journey_as_users(council: str, today: date) -> list[AnyCommand]:
    """`application.journey.journey()` (hand-picked team, approved by the adviser), each
    command sent as one of the bench's users."""
    legacy_contact = f"council:{council}"
    return [command.model_copy(update={"actor": contact(council)})
            if command.actor == legacy_contact else command
            for command in journey(council, today, officer=OFFICER.actor,
                                   approver=ADVISER.actor)]


def add_users(store: EventStore, councils: Iterable[str]) -> dict[str, str]:
    """The bench's users, made in the store as an operator makes them (`cases users add`):
    the officer, the adviser and a contact for each council. Returns each one's API token,
    by the actor the API records for them."""
    tokens = {OFFICER.actor: add_user(store, OFFICER.name, OFFICER.role),
              ADVISER.actor: add_user(store, ADVISER.name, ADVISER.role)}
    for council in sorted(set(councils)):
        tokens[contact(council)] = add_user(store, f"contact-{council}", Role.COUNCIL, council)
    return tokens


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process `pid`, from /proc; NaN if gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return math.nan


def tree_cpu(pid: int) -> float:
    """CPU seconds of process `pid` and of its live descendants (`cases serve --processes`
    runs its servers as children), from /proc."""
    total = process_cpu(pid)
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu(int(child))
    return total


@dataclass(frozen=True)
class ApiProcess:
    url: str
    pid: int
    log: Path

    def cpu(self) -> float:
        return tree_cpu(self.pid)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def api_process(environment: Mapping[str, str], logs: Path,
                      arguments: Sequence[str] = ()) -> AsyncIterator[ApiProcess]:
    """`cases serve` on a free port, configured from `environment` as the workers are
    (CASES_DATABASE_URL, TEMPORAL_ADDRESS, CASES_COMMAND_KEY_FILE), logging JSON as in
    production; yields once it answers /healthz, stops it (SIGTERM) on exit."""
    root = Path(__file__).resolve().parent.parent
    port = free_port()
    log = logs / "api.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(root / "starter.py"), "serve", "--port", str(port),
             "--log-format", "json", *arguments], env=dict(environment), cwd=root, stdout=output,
            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        await until_healthy(url, process, log)
        yield ApiProcess(url=url, pid=process.pid, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


async def until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"`cases serve` exited ({process.returncode}):\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit(f"`cases serve` did not answer within 60 s (its output: {log})")
