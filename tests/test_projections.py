"""The read models (issue 17): projected from the events in position order, on SQLite and
PostgreSQL; equal whether kept current batch by batch or rebuilt from nothing; two projectors
racing apply each event once; a gap or a broken link stops them, saying where."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.figures import annual_figures, facts_of, figures_from_facts
from domain.policies import PolicyBook
from domain.read_models import CaseSummary, case_summary, council_summary
from domain.recorded import Recorded
from domain.state import CaseState, fold
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore, NewEvent
from eventstore.projections import (
    _COUNCIL_INPUTS,
    ProjectionBroken,
    Projector,
    _Cases,
    all_facts,
    case_count,
    case_rows,
    council_rows,
    facts_for_period,
    figures_for_period,
    first_corporate_visits,
    require_sound,
    status,
)
from eventstore.schema import case_figures, case_summaries, council_summaries, events
from runtime.projecting import projecting
from tests.support import run_cli
from tests.test_domain_figures import Plan, _team, history_of, plan_year

START, END = date(2025, 4, 1), date(2026, 3, 31)


def new_events(history: list[Recorded]) -> list[NewEvent]:
    return [NewEvent.of(r.event, event_id=r.event_id, occurred_at=r.occurred_at, actor=r.actor)
            for r in history]


def append_in_pieces(store: EventStore, histories: list[list[Recorded]],
                     rng: random.Random, *, cases_a_round: int = 1, most: int = 4,
                     between: Callable[[], object] | None = None) -> None:
    """Every history appended a few events (1 to `most`) at a time, the cases interleaved:
    `cases_a_round` cases a round, then `between` (a projector's turn, say)."""
    cursors = {h[0].case_id: 0 for h in histories}
    by_id = {h[0].case_id: h for h in histories}
    while cursors:
        for case_id in rng.sample(sorted(cursors), min(cases_a_round, len(cursors))):
            done, history = cursors[case_id], by_id[case_id]
            step = rng.randint(1, most)
            store.append(case_id, done, new_events(history[done:done + step]))
            if done + step >= len(history):
                del cursors[case_id]
            else:
                cursors[case_id] = done + step
        if between is not None:
            between()


def fresh_id(event_id: str, rng: random.Random) -> str:
    """Another UUID: the same journeys appended again as other cases (never one already
    stored, however often hypothesis draws the same example into the same store)."""
    return str(uuid.uuid4())


def snapshot(store: EventStore) -> dict[str, Any]:
    """Every read model row, comparable."""
    with store.engine.connect() as conn:
        return {table.name: sorted(tuple(sorted((k, repr(v)) for k, v in row._mapping.items()))
                                   for row in conn.execute(sa.select(table)))
                for table in (case_summaries, council_summaries, case_figures)}


def test_kept_current_equals_rebuilt_and_the_fold(any_store: EventStore) -> None:
    store = any_store
    rng = random.Random(5)
    histories = [history_of(plan) for plan in plan_year(7)]
    append_in_pieces(store, histories[:20], rng)
    projector = Projector(store, batch_size=7)
    projector.catch_up()
    append_in_pieces(store, histories[20:], rng)
    while projector.catch_up(max_events=rng.randint(1, 30)):
        pass
    assert status(store.engine).behind == 0
    kept = snapshot(store)
    assert Projector(store).rebuild() == store.last_position()
    assert snapshot(store) == kept

    # what the read models say is what the fold says
    folded = {h[0].case_id: fold(h[0].case_id, h) for h in histories}
    rows = {r.case_id: r for r in case_rows(store.engine, include_ended=True)}
    assert set(rows) == set(folded)
    for case_id, state in folded.items():
        assert rows[case_id].stage == state.stage
        assert rows[case_id].visit_ended_on == state.visit_held_to
        assert rows[case_id].report_published_on == state.report_published_on
    assert figures_from_facts(all_facts(store.engine), START, END) == annual_figures(
        histories, START, END)
    open_rows = case_rows(store.engine)
    assert all(Stage(r.stage).is_open for r in open_rows)
    deadlines = [r.next_deadline_at for r in open_rows if r.next_deadline_at is not None]
    assert deadlines == sorted(deadlines)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 50))
def test_any_journeys_projected_in_any_batches_equal_a_rebuild(
        sqlite_store: EventStore, seed: int, batch: int) -> None:
    """Property: over random journeys, appended interleaved, projecting as they come in
    batches of any size gives the rows a rebuild from nothing gives."""
    store = sqlite_store
    Projector(store).rebuild()
    rng = random.Random(seed)
    plans = plan_year(seed)[:rng.randint(1, 12)]
    suffix = f"-{seed}-{batch}-{uuid.uuid4().hex[:10]}"
    histories = [[r.model_copy(update={"case_id": r.case_id + suffix,
                                       "event_id": fresh_id(r.event_id, rng)})
                  for r in history_of(plan)] for plan in plans]
    projector = Projector(store, batch_size=batch)
    for history in histories:
        store.append(history[0].case_id, 0, new_events(history[:2]))
        projector.catch_up(max_events=rng.randint(0, 5))
    for history in histories:
        store.append(history[0].case_id, 2, new_events(history[2:]))
    projector.catch_up()
    kept = snapshot(store)
    Projector(store).rebuild()
    assert snapshot(store) == kept
    for history in histories:
        facts = facts_of(history)
        stored = next(f for f in all_facts(store.engine) if f.case_id == history[0].case_id)
        assert facts is not None and stored.model_dump() == facts.model_dump()


def test_two_projectors_racing_on_postgresql_apply_each_event_once(
        postgres_store: EventStore) -> None:
    store = postgres_store
    histories = [history_of(plan) for plan in plan_year(3)]
    errors: list[BaseException] = []
    appending = threading.Event()

    def append() -> None:
        append_in_pieces(store, histories, random.Random(1))
        appending.set()

    def project() -> None:
        projector = Projector(store, batch_size=5)
        try:
            while not appending.is_set() or status(store.engine).behind:
                projector.catch_up(max_events=13)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=append), threading.Thread(target=project),
               threading.Thread(target=project)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert require_sound(store.engine).behind == 0
    raced = snapshot(store)
    Projector(store).rebuild()
    assert snapshot(store) == raced


def test_a_broken_link_stops_the_projection_and_says_where(any_store: EventStore) -> None:
    store = any_store
    history = history_of(plan_year(2)[0])
    store.append(history[0].case_id, 0, new_events(history[:2]))
    Projector(store).catch_up()
    forged = new_events(history[2:3])[0]
    with store.engine.begin() as conn:  # a row written around the store: prev_hash wrong
        conn.execute(events.insert().values(
            case_id=history[0].case_id, version=3, event_id=forged.event_id, type=forged.type,
            schema_version=forged.schema_version, occurred_at=forged.occurred_at,
            actor=forged.actor, payload=forged.payload, prev_hash="0" * 64, hash="f" * 64))
    position = store.last_position()
    with pytest.raises(ProjectionBroken, match=f"version 3 \\(position {position}\\) does not "
                                               "link to version 2"):
        Projector(store).catch_up()
    with pytest.raises(ProjectionBroken, match="nothing is served from them"):
        require_sound(store.engine)
    assert status(store.engine).position == position - 1  # nothing of the batch applied
    with pytest.raises(ProjectionBroken):
        Projector(store).rebuild()  # the store is still broken: it stops again


def test_a_missing_version_stops_the_projection(sqlite_store: EventStore) -> None:
    store = sqlite_store
    history = history_of(plan_year(2)[0])
    store.append(history[0].case_id, 0, new_events(history[:1]))
    forged = new_events(history[2:3])[0]
    with store.engine.begin() as conn:
        conn.execute(events.insert().values(
            case_id=history[0].case_id, version=3, event_id=forged.event_id, type=forged.type,
            schema_version=forged.schema_version, occurred_at=forged.occurred_at,
            actor=forged.actor, payload=forged.payload, prev_hash="0" * 64, hash="f" * 64))
    with pytest.raises(ProjectionBroken,
                       match=r"version 3 .* follows version 1; a version is missing"):
        Projector(store).catch_up()


def test_a_council_summary_is_its_last_corporate_challenge(sqlite_store: EventStore) -> None:
    store = sqlite_store
    histories = [history_of(plan) for plan in plan_year(9)]
    for history in histories:
        store.append(history[0].case_id, 0, new_events(history))
    Projector(store).catch_up()
    councils = council_rows(store.engine)
    folded = [fold(h[0].case_id, h) for h in histories]
    for gss, row in councils.items():
        visits = [s for s in folded if s.council == gss and s.visit_held_to is not None
                  and s.kind is not None and s.kind.value == "corporate_peer_challenge"]
        last = max(visits, key=lambda s: (s.visit_held_to, s.case_id))
        assert row["last_case_id"] == last.case_id
        assert row["visit_ended_on"] == last.visit_held_to
        assert row["report_published_on"] == last.report_published_on
        assert row["corporate_challenges"] == len(visits)


async def test_a_worker_keeps_the_read_models_current_while_appends_run(
        sqlite_store: EventStore) -> None:
    """The loop every worker runs: each append is applied soon after, while more come."""
    store = sqlite_store
    histories = [history_of(plan) for plan in plan_year(8)][:15]
    reached: list[bool] = []
    async with projecting(store, interval=0.05):
        for history in histories:
            stored = await asyncio.to_thread(store.append, history[0].case_id, 0,
                                             new_events(history))
            for _ in range(400):
                if status(store.engine).position >= stored[-1].position:
                    reached.append(True)
                    break
                await asyncio.sleep(0.01)
            else:
                reached.append(False)
    assert all(reached) and len(reached) == len(histories)
    assert {r.case_id for r in case_rows(store.engine, include_ended=True)} == {
        h[0].case_id for h in histories}


def test_the_cli_says_when_the_read_models_lag_or_stopped(
        sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store = sqlite_store
    monkeypatch.setenv("CASES_DATABASE_URL", str(store.engine.url))
    history = history_of(plan_year(2)[0])
    store.append(history[0].case_id, 0, new_events(history[:2]))
    assert run_cli(["report", "annual", "--financial-year", "2025"]) == 0
    assert "the read models are 2 positions behind the store" in capsys.readouterr().out
    assert run_cli(["projections", "rebuild"]) == 0
    assert "2 events applied" in capsys.readouterr().out
    forged = new_events(history[2:3])[0]
    with store.engine.begin() as conn:
        conn.execute(events.insert().values(
            case_id=history[0].case_id, version=3, event_id=forged.event_id, type=forged.type,
            schema_version=forged.schema_version, occurred_at=forged.occurred_at,
            actor=forged.actor, payload=forged.payload, prev_hash="0" * 64, hash="f" * 64))
    with pytest.raises(ProjectionBroken):
        Projector(store).catch_up()
    for argv in (["report", "annual", "--financial-year", "2025"], ["councils", "due"]):
        assert run_cli(argv) == 1
        said = capsys.readouterr().err
        assert said.count("\n") == 1 and "does not link to version 2" in said
        assert "`cases projections rebuild`" in said
    assert run_cli(["projections", "status"]) == 1
    assert "STOPPED" in capsys.readouterr().out


def test_a_periods_figures_from_its_own_cases_equal_those_from_every_case(
        any_store: EventStore) -> None:
    """What `report annual` reads: only the cases the period can count, with each council's
    first corporate visit over all of them; the same figures as from every case's facts."""
    store = any_store
    histories = [history_of(plan) for seed in (3, 4) for plan in plan_year(seed)]
    for history in histories:
        store.append(history[0].case_id, 0, new_events(history))
    Projector(store).catch_up()
    every = list(all_facts(store.engine))
    for start, end in ((START, END), (date(2024, 4, 1), date(2025, 3, 31)),
                       (date(2025, 9, 1), date(2025, 9, 30))):
        some = facts_for_period(store.engine, start, end)
        assert len(some) <= len(every)
        assert figures_from_facts(some, start, end,
                                  first_corporate=first_corporate_visits(store.engine),
                                  case_count=case_count(store.engine)) == figures_from_facts(
            every, start, end)
        assert figures_for_period(store.engine, start, end) == figures_from_facts(
            every, start, end)


def test_a_councils_first_corporate_visit_names_every_case_that_ended_that_day(
        any_store: EventStore) -> None:
    """"First time" is judged by each council's earliest corporate visit over every case: two
    cases whose visits ended that day both stand behind it; a later visit, or an earlier one
    of another kind, does not."""
    store = any_store

    def case(case_id: str, council: str, visit_end: date,
             kind: CaseKind = CaseKind.CORPORATE_PEER_CHALLENGE) -> list[Recorded]:
        team, _ = _team(random.Random(case_id))
        return history_of(Plan(case_id=case_id, council=council, kind=kind,
                               visit_end=visit_end, team=team, objected=None,
                               publish_delay=None, plan_extra=None,
                               withdrawn_after_visit=False))

    histories = [case("a-2", "E06000001", date(2025, 6, 2)),
                 case("a-1", "E06000001", date(2025, 6, 2)),
                 case("a-later", "E06000001", date(2025, 9, 1)),
                 case("a-finance", "E06000001", date(2024, 1, 5), CaseKind.FINANCE),
                 case("b-old", "E06000002", date(2019, 3, 1)),
                 case("b-new", "E06000002", date(2025, 7, 1))]
    for history in histories:
        store.append(history[0].case_id, 0, new_events(history))
    Projector(store).catch_up()
    assert first_corporate_visits(store.engine) == {
        "E06000001": (date(2025, 6, 2), ["a-1", "a-2"]),
        "E06000002": (date(2019, 3, 1), ["b-old"])}
    figures = figures_for_period(store.engine, START, END)
    assert figures.first_time_council_codes == ("E06000001",)
    assert figures.case_ids["first_time_councils"] == ("a-1", "a-2")
    assert figures == annual_figures(histories, START, END)


def test_figure_facts_altered_by_hand_are_refused_and_a_rebuild_restores_them(
        sqlite_store: EventStore) -> None:
    """The report counts the stored facts as stored, without a model per case: a row not as
    the projector writes it stops the report with one line saying to rebuild, and a rebuild
    from the events gives the figures back."""
    store = sqlite_store
    for history in (history_of(plan) for plan in plan_year(3)):
        store.append(history[0].case_id, 0, new_events(history))
    Projector(store).catch_up()
    before = figures_for_period(store.engine, START, END)
    with store.engine.begin() as conn:
        conn.execute(case_figures.update().values(facts={"case_id": "x"}))
    with pytest.raises(ProjectionBroken, match="cases projections rebuild"):
        figures_for_period(store.engine, START, END)
    Projector(store).rebuild()
    assert figures_for_period(store.engine, START, END) == before


# --- the folded cases a projector keeps between batches -----------------------------------

def counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each case state the projector parses from its stored JSON, by case id."""
    parsed: list[str] = []
    validate = CaseState.model_validate

    def counting(value: Any, *args: Any, **kwargs: Any) -> CaseState:
        state = validate(value, *args, **kwargs)
        parsed.append(state.case_id)
        return state

    monkeypatch.setattr(CaseState, "model_validate", counting)
    return parsed


def councils_folded(histories: list[list[Recorded]]) -> dict[str, dict[str, Any]]:
    """The council summaries the folds of these whole histories give."""
    summaries = [case_summary(fold(h[0].case_id, h), PolicyBook(demo_mode=True))
                 for h in histories]
    return {gss: row for gss in {s.council for s in summaries}
            if (row := council_summary(gss, [s for s in summaries if s.council == gss]))
            is not None}


def test_two_projectors_taking_turns_keep_their_cases_and_equal_a_rebuild(
        any_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each keeps the cases it folded; a case the other has moved on since is read again
    from its row, so whichever applies the next events, the rows are a rebuild's."""
    store = any_store
    rng = random.Random(11)
    histories = [history_of(plan) for plan in plan_year(4)][:25]
    first, second = Projector(store, batch_size=6), Projector(store, batch_size=9)
    parsed = counting_parses(monkeypatch)
    append_in_pieces(store, histories, rng, cases_a_round=4, most=3,
                     between=lambda: rng.choice((first, second)).catch_up(
                         max_events=rng.randint(1, 25)))
    while first.catch_up() or second.catch_up():
        pass
    assert status(store.engine).behind == 0
    assert first._folded and second._folded
    assert 0 < len(parsed) < sum(len(h) for h in histories)  # kept cases were not parsed
    assert council_rows(store.engine) == councils_folded(histories) != {}
    kept = snapshot(store)
    Projector(store).rebuild()
    assert snapshot(store) == kept


def test_a_kept_case_another_projector_moved_on_is_read_again(
        any_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = any_store
    history, other = (history_of(plan) for plan in plan_year(6)[:2])
    case_id = history[0].case_id
    mine, theirs = Projector(store), Projector(store)
    store.append(case_id, 0, new_events(history[:2]))
    store.append(other[0].case_id, 0, new_events(other[:2]))
    assert mine.catch_up() == 4
    parsed = counting_parses(monkeypatch)

    store.append(case_id, 2, new_events(history[2:3]))
    assert mine.catch_up() == 1
    assert parsed == []  # its row still said the version and head it kept

    store.append(case_id, 3, new_events(history[3:5]))
    assert theirs.catch_up() == 2  # theirs read it from the row; mine still holds version 3
    assert parsed == [case_id]
    store.append(case_id, 5, new_events(history[5:]))
    store.append(other[0].case_id, 2, new_events(other[2:3]))
    assert mine.catch_up() == len(history) - 5 + 1
    assert parsed == [case_id, case_id]  # read again; the other case came from what it kept
    assert mine._folded[case_id].version == len(history)
    kept = snapshot(store)
    Projector(store).rebuild()
    assert snapshot(store) == kept
    assert {r.case_id: r.stage for r in case_rows(store.engine, include_ended=True)}[
        case_id] == fold(case_id, history).stage


def test_a_batch_rolled_back_leaves_what_the_projector_kept_as_the_rows_are(
        sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that fails after folding its events (here: writing its rows) rolls back; the
    cases are kept as committed, so the next batch applies the same events again."""
    store = sqlite_store
    history = history_of(plan_year(2)[0])
    case_id = history[0].case_id
    projector = Projector(store)
    store.append(case_id, 0, new_events(history[:3]))
    projector.catch_up()
    store.append(case_id, 3, new_events(history[3:]))
    write = _Cases.write

    def failing(self: _Cases, conn: sa.Connection, book: Any) -> None:
        write(self, conn, book)
        raise sa.exc.OperationalError("UPDATE", {}, Exception("the disk is full"))

    monkeypatch.setattr(_Cases, "write", failing)
    with pytest.raises(sa.exc.OperationalError):
        projector.catch_up()
    assert projector._folded[case_id].version == 3 and status(store.engine).behind > 0
    monkeypatch.setattr(_Cases, "write", write)
    parsed = counting_parses(monkeypatch)
    assert projector.catch_up() == len(history) - 3
    assert parsed == []
    kept = snapshot(store)
    Projector(store).rebuild()
    assert snapshot(store) == kept


def test_a_projector_keeps_at_most_its_bound_of_cases(sqlite_store: EventStore) -> None:
    store = sqlite_store
    histories = [history_of(plan) for plan in plan_year(5)][:12]
    projector = Projector(store, batch_size=4, folded_cases=3)
    append_in_pieces(store, histories, random.Random(3))
    while projector.catch_up(max_events=5):
        assert len(projector._folded) <= 3
    assert council_rows(store.engine) == councils_folded(histories) != {}
    kept = snapshot(store)
    Projector(store).rebuild()
    assert snapshot(store) == kept


def test_a_council_summary_reads_only_its_cases_council_inputs() -> None:
    """The projector rewrites a council's summary only when one of its cases changed a column
    in `_COUNCIL_INPUTS`: changing any other column of a case's summary changes nothing."""
    base = CaseSummary(
        case_id="c-1", council="E06000001", kind=CaseKind.CORPORATE_PEER_CHALLENGE.value,
        stage="report_published", requested_on=date(2025, 1, 6),
        visit_started_on=date(2025, 5, 5), visit_ended_on=date(2025, 5, 8),
        report_final_on=date(2025, 7, 1), report_published_on=date(2025, 7, 8),
        action_plan_published_on=None, progress_review_on=None,
        progress_review_published_on=None, report_url="https://example.org/r",
        next_deadline="action_plan_publication",
        next_deadline_at=datetime(2025, 10, 8, tzinfo=UTC), escalation_level=0,
        imported=False)
    others = {"stage": "action_plan_published", "requested_on": date(2025, 2, 1),
              "visit_started_on": date(2025, 5, 6), "report_final_on": date(2025, 7, 2),
              "next_deadline": None, "next_deadline_at": None, "escalation_level": 2,
              "imported": True, "requested_by": "officer:x", "awaiting_approval": 1}
    assert set(others) == set(CaseSummary.model_fields) - set(_COUNCIL_INPUTS) - {"case_id"}
    other_case = base.model_copy(update={"case_id": "c-0", "visit_ended_on": date(2024, 1, 1)})
    expected = council_summary("E06000001", [base, other_case])
    for name, value in others.items():
        changed = base.model_copy(update={name: value})
        assert council_summary("E06000001", [changed, other_case]) == expected, name
