"""The auditors' commands as typed: history as of a date, diff, export, the annual report."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from cli.auditing import _emit_figures
from cli.output import as_json
from eventstore import EventStore
from eventstore.projections import Projector
from tests.support import run_cli
from tests.test_domain_timeline import full_journey
from tests.test_eventstore_export import store_history

CASE = "cpc-E06000001-2025"


@pytest.fixture
def audited(sqlite_store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store_history(sqlite_store, full_journey(CASE, "E06000001", start=date(2025, 1, 6)))
    store_history(sqlite_store, full_journey("cpc-E08000025-2025", "E08000025",
                                             start=date(2025, 2, 3)))
    Projector(sqlite_store).catch_up()  # as a running worker does
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    return tmp_path


def out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_history_as_of_a_date_shows_the_case_as_it_stood(
    audited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["history", CASE, "--json"]) == 0
    everything = json.loads(out(capsys))
    assert run_cli(["history", CASE, "--as-of", "2025-01-13", "--json"]) == 0
    then = json.loads(out(capsys))
    assert then["state"]["stage"] == "scoped"
    assert [e["version"] for e in then["events"]] == [1, 2]
    assert then["events"] == everything[:2]
    assert run_cli(["history", CASE, "--as-of", "2025-01-01"]) == 0
    assert "not started" in out(capsys)
    assert run_cli(["history", CASE, "--as-of", "last tuesday"]) == 2


def test_diff_names_what_changed(audited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["diff", CASE, "--from", "2025-01-06", "--to", "2025-01-13"]) == 0
    text = out(capsys)
    assert "stage: requested → scoped" in text and "+ v2 CaseScoped" in text
    assert run_cli(["diff", CASE, "--from", "2025-02-01", "--to", "2025-01-01"]) == 2


def test_export_json_csv_and_a_bundle_its_own_verifier_accepts(
    audited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["export", CASE]) == 0
    rows = json.loads(out(capsys))["events"]
    assert rows[0]["version"] == 1 and len(rows[-1]["hash"]) == 64
    assert run_cli(["export", CASE, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(out(capsys))))
    assert [int(r["version"]) for r in table] == [r["version"] for r in rows]
    bundle = audited / "bundle"
    assert run_cli(["export", CASE, "--bundle", str(bundle)]) == 0
    checked = subprocess.run([sys.executable, "-I", "-S", str(bundle / "verify.py")],
                             capture_output=True, text=True, check=False, cwd=audited)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert run_cli(["export", CASE, "--bundle", str(bundle)]) == 2, "never overwrites"
    assert run_cli(["export", "no-such-case"]) == 2


def test_the_annual_report_as_table_json_csv_and_chart(
    audited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = audited / "figures.svg"
    assert run_cli(["report", "annual", "--year", "2025", "--json", "--chart", str(chart)]) == 0
    figures = json.loads(out(capsys))
    assert figures["delivered"] == 2
    assert figures["corporate_delivered"] == 2 and figures["first_time_councils"] == 2
    assert "<svg" in chart.read_text()[:300]
    assert run_cli(["report", "annual", "--year", "2025", "--csv"]) == 0
    assert "delivered,peer challenges delivered (visits held),2" in out(capsys)
    assert run_cli(["report", "annual", "--year", "2024"]) == 0
    assert "Figures from 2024-01-01 to 2024-12-31" in out(capsys)
    assert run_cli(["report", "annual"]) == 2
    assert run_cli(["report", "annual", "--from", "2025-06-01", "--to", "2025-01-01"]) == 2


def test_the_annual_reports_json_is_written_as_every_commands_is(
    audited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report writes its JSON (every case behind each figure: long) with orjson, to the
    byte what `as_json` writes for every other command; text `as_json` would escape (a
    bidirectional override, DEL) still comes out escaped, harmless on a terminal."""
    assert run_cli(["report", "annual", "--year", "2025", "--json"]) == 0
    text = out(capsys)
    assert json.loads(text)["case_ids"]["delivered"] == [CASE, "cpc-E08000025-2025"]
    assert text == as_json(json.loads(text)) + "\n"
    for tricky in ({"case_ids": {"delivered": ["cpc-\u202e-2025"]}}, {"note": "a\x7fb"},
                   {"big": 2**70}):
        _emit_figures(argparse.Namespace(json=True), tricky, "")
        shown = out(capsys)
        assert shown == as_json(tricky) + "\n"
        assert "\u202e" not in shown and "\x7f" not in shown
