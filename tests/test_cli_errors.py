"""Every failure a user can meet outside the rules is one line on stderr, saying what happened
and what to do, exit 1: never a traceback, never a transport library's words, never a
password."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstore import open_store
from tests.test_cli_dev_server import free_port

BIN = Path(sys.executable).parent
PASSWORD = "s3cr3t-pw-9"


def cases(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CASES_TOKEN": "", **environ}
    return subprocess.run([str(BIN / "cases"), *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The single line on stderr, after checking it is the only one and says `words`."""
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1, done.stderr
    for banned in ("Traceback", "tonic", "transport::Error", PASSWORD):
        assert banned not in done.stderr + done.stdout, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    return done.stderr


def test_status_with_nothing_running_says_so_in_one_line() -> None:
    done = cases("status", "cpc-E06000001-2026",
                 CASES_API_URL=f"http://127.0.0.1:{free_port()}",
                 TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    one_line(done, "cannot reach the API", "CASES_API_URL", "nothing was recorded", "try again")


def test_temporal_unreachable_names_the_address_and_the_variable(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    for args in (["setup"], ["audit", "replay", "cpc-E06000001-2026"]):
        done = cases(*args, TEMPORAL_ADDRESS=address,
                     CASES_DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}")
        one_line(done, f"cannot reach Temporal at {address}", "TEMPORAL_ADDRESS", "cases dev")


def test_an_unsupported_database_is_named_without_its_password() -> None:
    done = cases("history", "cpc-E06000001-2026",
                 CASES_DATABASE_URL=f"mysql://app:{PASSWORD}@127.0.0.1:3306/test")
    one_line(done, "'mysql'", "sqlite:///", "postgresql://")


def test_a_database_without_tables_says_to_upgrade(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    done = cases("history", "cpc-E06000001-2026", CASES_DATABASE_URL=f"sqlite:///{empty}")
    one_line(done, "no tables", "cases db upgrade")


def test_an_unreachable_postgresql_says_try_again_and_hides_the_password() -> None:
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:{free_port()}/test"
    done = cases("history", "cpc-E06000001-2026", CASES_DATABASE_URL=url)
    one_line(done, "cannot reach the database", "try again", "***")


@pytest.fixture
def store_with_councils(tmp_path: Path, register_csv: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    open_store(url).migrate()
    assert cases("councils", "import", str(register_csv), CASES_DATABASE_URL=url
                 ).returncode == 0
    yield url


def test_a_reader_that_goes_away_is_one_line(store_with_councils: str) -> None:
    process = subprocess.Popen([str(BIN / "cases"), "councils", "list", "--json"],
                               env={**os.environ, "CASES_DATABASE_URL": store_with_councils},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `| head -0` does: nobody reads what it writes
    stderr = process.stderr.read()
    process.wait(timeout=60)
    one_line(subprocess.CompletedProcess([], process.returncode, "", stderr),
             "closed pipe", "nothing was recorded")


def test_ctrl_c_is_one_line() -> None:
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        process = subprocess.Popen(
            [str(BIN / "cases"), "status", "cpc-E06000001-2026"], text=True,
            env={**os.environ, "CASES_TOKEN": "cases_x",
                 "CASES_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    one_line(subprocess.CompletedProcess([], process.returncode, stdout, stderr),
             "interrupted", "nothing was recorded")
