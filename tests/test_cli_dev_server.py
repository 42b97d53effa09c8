"""The CLI as a user types it, against the real dev server and a worker in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from eventstore import open_store
from eventstore.verify import verify_all

BIN = Path(sys.executable).parent


class Shell:
    """Runs `cases …`, `cases-worker` and `cases serve` with one environment, like a terminal
    would; each command signs in with the token of the user it is run as."""

    def __init__(self, env: WorkflowEnvironment, database: Path, home: Path) -> None:
        self.api_port = free_port()
        self.environ = {**os.environ,
                        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                        "TEMPORAL_NAMESPACE": "default",
                        "CASES_DATABASE_URL": f"sqlite:///{database}",
                        "CASES_API_URL": f"http://127.0.0.1:{self.api_port}",
                        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        self.environ.pop("CASES_TOKEN", None)
        self.database = database
        self.tokens: dict[str, str] = {}
        self.as_user = "officer"

    def cases(self, *args: str, expect: int = 0, as_user: str | None = None,
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        who = as_user or self.as_user
        environ = {**self.environ, "CASES_TOKEN": self.tokens.get(who, "")}
        done = subprocess.run([str(BIN / "cases"), *args], env=environ, text=True,
                              input=stdin, capture_output=True, timeout=180, check=False)
        assert done.returncode == expect, (args, who, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def add_user(self, key: str, name: str, role: str, council: str | None = None) -> None:
        """`cases users add`, as the operator on the server: keeps the token it prints."""
        args = ["users", "add", name, "--role", role, "--json"]
        if council:
            args += ["--council", council]
        self.tokens[key] = json.loads(self.cases(*args).stdout)["token"]

    def start_worker(self) -> subprocess.Popen[str]:
        return subprocess.Popen([str(BIN / "cases-worker"), "--log-format", "json"],
                                env=self.environ, text=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    def start_api(self) -> subprocess.Popen[str]:
        process = subprocess.Popen([str(BIN / "cases"), "serve", "--port", str(self.api_port)],
                                   env=self.environ, text=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.api_port), timeout=0.5):
                return process
            assert process.poll() is None, "cases serve stopped"
            time.sleep(0.1)
        raise AssertionError("cases serve did not listen")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def shell(dev_server_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[Shell]:
    shell = Shell(dev_server_env, tmp_path / "cases.db", tmp_path / "home")
    shell.cases("db", "upgrade")  # as an operator does first: nothing migrates by itself
    shell.add_user("officer", "siân.jones", "case_officer")
    shell.add_user("adviser", "raj.patel", "lga_adviser")
    yield shell


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def worker(shell: Shell) -> Iterator[subprocess.Popen[str]]:
    """A worker and the API beside it, as an operator runs them."""
    process = shell.start_worker()
    api = shell.start_api()
    yield process
    _stop(api)
    _stop(process)


COUNCIL = "E08000025"


def journey_args(case: str, today: str) -> list[tuple[str, list[str]]]:
    """Every action of a corporate peer challenge, as typed on the command line, by whom."""
    digest = "ab" * 32
    officer = "officer"
    return [(officer, args) if args[0] not in COUNCIL_ACTIONS else ("council", args)
            for args in [
        ["scope", case, "--scope", "finance,governance", "--visit-mode", "on_site"],
        ["propose-team", case, "--peer", "p1|Cllr Amina Shah|lead_member|E09000008",
         "--peer", "p2|Dr Tom Reyes|lead_officer|E06000047",
         "--peer", "p3|Jo Pike|officer|E07000223", "--peer", "p4|Sam Ode|challenge_manager"],
        ["approve", case, "--request-id", "propose-team-3"],
        ["confirm-team", case],
        ["schedule-visit", case, "--mode", "remote", "--starts-on", today, "--ends-on", today],
        ["record-visit", case, "--started-on", today, "--ended-on", today],
        ["give-feedback", case, "--given-on", today, "--summary", "Good grip on finances."],
        ["draft-report", case, "--document-sha256", digest, "--sent-on", today],
        ["factual-accuracy-comments", case, "--comments", "Para 4: £12m."],
        ["finalise-report", case, "--document-sha256", "cd" * 32],
        ["publish-report", case, "--published-on", today, "--url", "https://example.org/r"],
        ["publish-action-plan", case, "--published-on", today, "--url",
         "https://example.org/a"],
        ["hold-progress-review", case, "--started-on", today, "--ended-on", today],
        ["publish-progress-review", case, "--published-on", today, "--url",
         "https://example.org/p"],
        ["close", case],
    ]]


COUNCIL_ACTIONS = {"factual-accuracy-comments", "publish-action-plan"}


def test_a_case_from_start_to_closed_as_typed(shell: Shell,
                                              worker: subprocess.Popen[str]) -> None:
    shell.add_user("council", "sam.lee", "council", COUNCIL)
    started = shell.cases("start", "--council", COUNCIL, "--kind", "corporate_peer_challenge",
                          "--reason", "Budget gap flagged", "--json")
    case = json.loads(started.stdout)["state"]["case_id"]
    assert case == f"cpc-{COUNCIL}-{datetime.now(UTC).year}"
    listed = json.loads(shell.cases("list", "--council", COUNCIL, "--json").stdout)
    assert [row["case"] for row in listed] == [case]  # the read models, caught up by the API

    today = datetime.now(UTC).date().isoformat()
    stages = []
    for who, args in journey_args(case, today):
        answer = json.loads(shell.cases(*args, "--json", as_user=(
            "adviser" if args[0] == "approve" else who)).stdout)
        stages.append(answer["state"]["stage"])
    assert stages[-1] == "closed"
    assert "report_published" in stages and "progress_review_published" in stages

    status = json.loads(shell.cases("status", case, "--json").stdout)
    assert status["state"]["version"] == 17
    history = json.loads(shell.cases("history", case, "--json").stdout)
    assert [e["version"] for e in history] == list(range(1, 18))
    actors = {e["type"]: e["actor"] for e in history}
    assert actors["CaseRequested"] == "case_officer:siân.jones"
    assert actors["RequestApproved"] == "lga_adviser:raj.patel"
    assert actors["ActionPlanPublished"] == f"council:{COUNCIL}:sam.lee"
    assert history[0]["type"] == "CaseRequested" and history[-1]["type"] == "CaseClosed"
    assert "intact" in shell.cases("verify").stdout
    assert "intact" in shell.cases("verify", case).stdout


def test_bad_input_and_refusals_exit_2_and_record_nothing(
    shell: Shell, worker: subprocess.Popen[str]
) -> None:
    shell.add_user("council", "kim.hart", "council", "E06000001")
    shell.add_user("other-council", "lee.moss", "council", COUNCIL)
    shell.cases("start", "--council", "E06000001", "--kind", "finance", "--reason", "x")
    case = f"fin-E06000001-{datetime.now(UTC).year}"
    before = open_store(f"sqlite:///{shell.database}").last_position()
    refused = [
        (["start", "--council", "E06000001", "--kind", "finance", "--reason", "again"],
         "already has an open finance"),
        (["start", "--council", "nowhere", "--kind", "finance", "--reason", "x"], "GSS code"),
        (["publish-report", case, "--published-on", "2026-01-01", "--url", "https://e.org"],
         "cannot publish the report"),
        (["scope", case, "--scope", "finance", "--visit-mode", "on_site", "--as",
          "council"], "only a case officer"),
        (["withdraw", case, "--reason", "Not ours", "--as", "other-council"],
         f"no case {case} for council {COUNCIL}"),
        (["status", case, "--as", "nobody"], "not signed in"),
        (["scope", case, "--scope", "finance", "--visit-mode", "on_site", "--actor",
          "case_officer:mallory"], "unrecognized arguments: --actor"),
        (["schedule-visit", case, "--mode", "on_site", "--starts-on", "2026-13-01",
          "--ends-on", "2026-12-01"], "--starts-on"),
        (["status", "cpc-E09999999-2026"], "no case"),
        (["history", "not a case"], "no case"),
    ]
    for args, message in refused:
        who = args[args.index("--as") + 1] if "--as" in args else None
        typed = args[:args.index("--as")] if "--as" in args else args
        done = shell.cases(*typed, expect=2, as_user=who)
        assert message in done.stderr, (args, done.stderr)
    assert open_store(f"sqlite:///{shell.database}").last_position() == before


def test_past_challenges_imported_as_typed(shell: Shell, worker: subprocess.Popen[str],
                                          tmp_path: Path) -> None:
    header = ("council,kind,visit_start,visit_end,report_published_on,action_plan_published_on,"
              "progress_review_on,progress_review_published_on,closed_on\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "E99999999,corporate_peer_challenge,2018-09-10,2018-09-13,,,,,\n"
                   "E06000001,peer_review,2018-09-10,2018-09-13,,,,,\n", encoding="utf-8")
    refused = shell.cases("import-history", str(bad), expect=2)
    assert "nothing imported: 2 problems" in refused.stderr
    assert "\n  row 2, column council: E99999999 is not in the register" in refused.stderr
    assert "\n  row 3, column kind: 'peer_review' is not a kind" in refused.stderr
    before = open_store(f"sqlite:///{shell.database}").last_position()
    assert before == 0
    good = tmp_path / "past.csv"
    good.write_text(header + "E06000001,corporate_peer_challenge,2018-09-10,2018-09-13,"
                    "2018-11-20,2019-01-10,,,2019-06-01\n", encoding="utf-8")
    first = json.loads(shell.cases("import-history", str(good), "--json").stdout)
    assert first["imported"] == ["cpc-E06000001-2018"] and first["under_way"] == []
    again = json.loads(shell.cases("import-history", str(good), "--json").stdout)
    assert again["imported"] == [] and again["already"] == ["cpc-E06000001-2018"]
    for _ in range(100):  # the worker projects what was imported
        if json.loads(shell.cases("projections", "status", "--json").stdout)["behind"] == 0:
            break
        time.sleep(0.1)
    report = json.loads(shell.cases("report", "annual", "--financial-year", "2018",
                                    "--json").stdout)
    assert report["delivered"] == 1 and report["first_time_councils"] == 1
    assert report["case_ids"]["delivered"] == ["cpc-E06000001-2018"]
    assert report["action_plans_on_time"] == 1


def test_verify_exits_3_naming_the_first_bad_event(shell: Shell,
                                                   worker: subprocess.Popen[str]) -> None:
    shell.cases("start", "--council", "E06000047", "--kind", "planning", "--reason", "x")
    case = f"pln-E06000047-{datetime.now(UTC).year}"
    shell.cases("scope", case, "--scope", "planning", "--visit-mode", "remote")
    import sqlite3

    with sqlite3.connect(shell.database) as db:
        db.execute("DROP TRIGGER events_no_update")
        db.execute("UPDATE events SET actor = 'officer:mallory' WHERE version = 2")
    done = shell.cases("verify", expect=3)
    assert f"case {case} version 2: altered" in done.stdout
    assert not verify_all(open_store(f"sqlite:///{shell.database}")).ok


def test_verify_against_a_checkpoint_catches_a_truncated_case(
    shell: Shell, worker: subprocess.Popen[str]
) -> None:
    shell.cases("start", "--council", "E10000014", "--kind", "communications", "--reason", "x")
    case = f"com-E10000014-{datetime.now(UTC).year}"
    shell.cases("scope", case, "--scope", "communications", "--visit-mode", "remote")
    recorded = json.loads(shell.cases("checkpoint", "now", "--json").stdout)
    assert recorded["cases"] == 1 and len(recorded["merkle_root"]) == 64
    import sqlite3

    with sqlite3.connect(shell.database) as db:
        db.execute("DROP TRIGGER events_no_delete")
        db.execute(f"DELETE FROM events WHERE case_id = '{case}' AND version = 2")
    assert "intact" in shell.cases("verify").stdout
    done = shell.cases("verify", "--against-checkpoint", expect=3)
    assert f"case {case} version 2: missing: truncated" in done.stdout


def test_audit_replay_of_a_case_as_typed(shell: Shell, worker: subprocess.Popen[str]) -> None:
    shell.cases("start", "--council", "E07000223", "--kind", "planning", "--reason", "x")
    case = f"pln-E07000223-{datetime.now(UTC).year}"
    shell.cases("scope", case, "--scope", "planning", "--visit-mode", "remote")
    audit = json.loads(shell.cases("audit", "replay", case, "--json").stdout)
    assert audit["ok"] and audit["appended"] == audit["stored"] == 2
    shell.cases("audit", "replay", "cpc-E07000223-1999", expect=2)


def test_the_engine_selects_the_team_takes_an_objection_and_explains_it_as_typed(
        shell: Shell, worker: subprocess.Popen[str]) -> None:
    council = "E06000057"  # Northumberland, built in
    shell.add_user("council", "ola.bell", "council", council)
    shell.cases("peers", "import", "--demo")
    started = shell.cases("start", "--council", council, "--kind", "corporate_peer_challenge",
                          "--reason", "Governance concerns", "--json")
    case = json.loads(started.stdout)["state"]["case_id"]
    shell.cases("scope", case, "--scope", "finance,governance", "--visit-mode", "on_site")
    today = datetime.now(UTC).date()
    visit_from, visit_to = (today + timedelta(days=20)).isoformat(), (
        today + timedelta(days=21)).isoformat()
    selected = json.loads(shell.cases("select-team", case, "--visit-from", visit_from,
                                      "--visit-to", visit_to, "--json").stdout)["state"]
    assert selected["team_selected_by"] == "engine"
    member = next(p for p in selected["proposed_team"] if p["role"] == "member")
    replaced = json.loads(shell.cases(
        "object-to-peer", case, "--peer-id", member["peer_id"], "--reason", "A conflict",
        "--json", as_user="council").stdout)["state"]
    assert member["peer_id"] not in {p["peer_id"] for p in replaced["proposed_team"]}
    assert "selected by the engine's rules" in shell.cases("status", case).stdout

    explained = shell.cases("peers", "explain", case)
    assert explained.stdout.count("reproduced exactly") == 2
    assert f"objected to: {member['peer_id']}" in explained.stdout
    shell.cases("confirm-team", case)
    shell.cases("schedule-visit", case, "--mode", "on_site", "--starts-on", visit_to,
                "--ends-on", (today + timedelta(days=22)).isoformat(), expect=2)
    asked = json.loads(shell.cases("withdraw", case, "--reason", "Test over.", "--json").stdout)
    [waiting] = asked["state"]["awaiting_approval"]
    shell.cases("approve", case, "--request-id", waiting["request_id"], as_user="adviser")


def test_a_case_whose_workflow_was_terminated_by_hand_is_flagged(
        shell: Shell, worker: subprocess.Popen[str], dev_server_env: WorkflowEnvironment
) -> None:
    """`temporal workflow terminate` leaves a case open that nothing will ever escalate:
    `cases verify` (exit 3) and `cases list` name it."""
    shell.cases("start", "--council", "E06000047", "--kind", "finance", "--reason", "x")
    case = f"fin-E06000047-{datetime.now(UTC).year}"
    assert "intact" in shell.cases("verify").stdout
    terminated = subprocess.run(
        [str(BIN / "temporal"), "workflow", "terminate", "--address",
         shell.environ["TEMPORAL_ADDRESS"], "--workflow-id", "improvement-case-fin-E06000047",
         "--reason", "by hand"], capture_output=True, text=True, timeout=60, check=False)
    assert terminated.returncode == 0, terminated.stderr
    flagged = shell.cases("verify", expect=3)
    assert f"STUCK: case {case}: open in the store" in flagged.stdout
    assert "TERMINATED" in flagged.stdout
    listed = shell.cases("list")
    assert f"STUCK: case {case}" in listed.stdout
    assert "intact" in shell.cases("verify", "--no-temporal").stdout


def test_a_hand_written_temporal_update_records_nothing(
        shell: Shell, worker: subprocess.Popen[str]) -> None:
    """Anyone with Temporal access can send `temporal workflow update execute --name act`
    with JSON of their own: it is not signed by the API, so the worker refuses it."""
    shell.cases("start", "--council", "E06000057", "--kind", "finance", "--reason", "x")
    case = f"fin-E06000057-{datetime.now(UTC).year}"
    asked = json.loads(shell.cases("withdraw", case, "--reason", "Needs a second person",
                                   "--json").stdout)["state"]
    [waiting] = asked["awaiting_approval"]
    assert f"awaiting  approval of {waiting['request_id']}" in shell.cases("status", case).stdout
    before = open_store(f"sqlite:///{shell.database}").head(case)[0]
    for forged in ({"action": "withdraw", "actor": "officer:ghost2", "reason": "forged"},
                   {"action": "approve", "actor": "lga_adviser:ghost3",
                    "request_id": waiting["request_id"]}):
        done = subprocess.run(
            [str(BIN / "temporal"), "workflow", "update", "execute", "--address",
             shell.environ["TEMPORAL_ADDRESS"], "--workflow-id", "improvement-case-fin-E06000057",
             "--name", "act", "--input", json.dumps(forged)],
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0
        assert "not signed by the engine's API" in done.stderr + done.stdout
    assert open_store(f"sqlite:///{shell.database}").head(case)[0] == before
    assert json.loads(shell.cases("status", case, "--json").stdout)["state"]["stage"] == "requested"


@pytest.mark.parametrize("taken", ["--port", "--web-port"])
def test_cases_dev_on_a_busy_port_names_it_and_never_says_ready(
        shell: Shell, taken: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        ports = {"--port": str(free_port()), "--web-port": str(free_port()), taken: str(busy)}
        done = shell.cases("dev", "--port", ports["--port"], "--web-port", ports["--web-port"],
                           expect=1)
    assert f"port {busy} on 127.0.0.1 is in use" in done.stderr
    assert f"choose another with {taken}" in done.stderr
    assert "ready" not in done.stdout + done.stderr


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_serve_with_two_processes_shares_one_port_and_stops_them_together(
        shell: Shell) -> None:
    process = subprocess.Popen(
        [str(BIN / "cases"), "serve", "--port", str(shell.api_port), "--processes", "2"],
        env=shell.environ, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        servers: list[int] = []
        while time.monotonic() < deadline and len(servers) < 2:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            servers = _children(process.pid)
            time.sleep(0.2)
        assert len(servers) == 2, servers
        answers: list[bytes] = []
        asked = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        while time.monotonic() < deadline and len(answers) < 20:
            with contextlib.suppress(OSError), socket.create_connection(  # until both listen
                    ("127.0.0.1", shell.api_port), timeout=2) as conn:
                conn.sendall(asked)
                answers.append(conn.recv(200).split(b"\r\n", 1)[0])
                continue
            time.sleep(0.1)
        assert answers == [b"HTTP/1.1 200 OK"] * 20

        busy = subprocess.run([str(BIN / "cases"), "serve", "--port", str(shell.api_port),
                               "--processes", "2"], env=shell.environ, text=True,
                              capture_output=True, timeout=60, check=False)
        assert busy.returncode != 0
        assert f"port {shell.api_port}" in busy.stderr and "Traceback" not in busy.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")
    for server in servers:
        assert not Path(f"/proc/{server}").exists() or "Z" in Path(
            f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[0], server


def test_serve_processes_stop_when_their_parent_is_killed_outright(shell: Shell) -> None:
    process = subprocess.Popen(
        [str(BIN / "cases"), "serve", "--port", str(shell.api_port), "--processes", "2"],
        env=shell.environ, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + 60
    servers: list[int] = []
    while time.monotonic() < deadline and len(servers) < 2:
        servers = _children(process.pid)
        time.sleep(0.2)
    assert len(servers) == 2, servers
    time.sleep(3)  # both started, watching their parent
    process.kill()
    process.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in servers):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in servers), "the servers outlived their parent"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
