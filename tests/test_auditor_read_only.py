"""Auditors' commands work through a PostgreSQL role that can only SELECT."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from eventstore import EventStore, NewEvent, open_store
from eventstore.checkpoints import record_checkpoint
from eventstore.projections import Projector
from tests.conftest import POSTGRES_URL, drop_schema, postgres_store_in_new_schema
from tests.support import T0, new_event, run_cli
from tests.test_domain_figures import history_of, plan_year


@pytest.fixture
def auditor_url() -> Iterator[tuple[str, EventStore]]:
    """A store with cases in a fresh schema, and the URL of a SELECT-only role for it."""
    store, schema = postgres_store_in_new_schema()
    for case_id, count in (("cpc-E09000008-2026", 4), ("fin-E06000001-2026", 2)):
        store.append(case_id, 0, [new_event(case_id, n) for n in range(1, count + 1)])
    record_checkpoint(store, event_id=str(uuid.uuid4()), at=T0, actor="system:checkpoint")
    with select_only(schema) as url:
        yield url, store
        drop_schema(store, schema)  # before the role: the role's grants go with it


@contextlib.contextmanager
def select_only(schema: str) -> Iterator[str]:
    """The URL of a new role that may only SELECT in `schema`; the role dropped after (the
    schema first, inside the block)."""
    role = f"auditor_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    url = make_url(POSTGRES_URL).set(username=role, query={"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


@pytest.mark.postgres
def test_the_role_really_cannot_write(auditor_url: tuple[str, EventStore]) -> None:
    url, _ = auditor_url
    auditor = open_store(url)
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        auditor.append("cpc-E09000008-2026", 4, [new_event("cpc-E09000008-2026", 5)])
    auditor.dispose()


@pytest.mark.postgres
def test_auditor_commands_run_on_select_only(
    auditor_url: tuple[str, EventStore], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = auditor_url
    monkeypatch.setenv("CASES_DATABASE_URL", url)
    assert run_cli(["verify"]) == 0
    assert "intact: 3 case(s)" in capsys.readouterr().out
    assert run_cli(["verify", "--against-checkpoint"]) == 0
    assert run_cli(["history", "cpc-E09000008-2026", "--json"]) == 0
    assert '"version": 4' in capsys.readouterr().out
    assert run_cli(["verify", "cpc-E09000008-2026"]) == 0


@pytest.fixture
def projected_auditor_url() -> Iterator[tuple[str, EventStore]]:
    """A store of real journeys, its read models projected (as a worker does), and the URL of
    a SELECT-only role for it."""
    store, schema = postgres_store_in_new_schema()
    for plan in plan_year(4):
        history = history_of(plan)
        store.append(history[0].case_id, 0, [
            NewEvent.of(r.event, event_id=r.event_id, occurred_at=r.occurred_at, actor=r.actor)
            for r in history])
    Projector(store).catch_up()
    with select_only(schema) as url:
        yield url, store
        drop_schema(store, schema)  # before the role: the role's grants go with it


@pytest.mark.postgres
def test_the_read_models_are_read_on_select_only(
    projected_auditor_url: tuple[str, EventStore], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, store = projected_auditor_url
    monkeypatch.setenv("CASES_DATABASE_URL", url)
    assert run_cli(["report", "annual", "--financial-year", "2025", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["start"] == "2025-04-01" and report["end"] == "2026-03-31"
    assert report["delivered"] == len(report["case_ids"]["delivered"]) > 0
    assert report["projection"] == {"position": store.last_position(), "behind": 0}
    assert run_cli(["councils", "due", "--json"]) == 0
    capsys.readouterr()
    assert run_cli(["projections", "status"]) == 0
    assert "0 behind" in capsys.readouterr().out
    assert run_cli(["projections", "rebuild"]) == 1  # the auditor changes nothing
    assert "permission denied" in capsys.readouterr().err
