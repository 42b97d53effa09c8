"""How fast an auditor can verify the store, and read a long case as it stood.

Prints `verify_all` throughput over N events (default 1,000,000, in cases of 200 events) on
SQLite, beside the rate of reading the same rows into `StoredEvent`s through SQLAlchemy (the
old baseline), the rate of the old verification (those `StoredEvent`s walked by check_chain),
the rate of fetching the raw rows verify_all fetches, and the time to fold a 200-event case as
of a moment in its middle. verify_all runs in one process and in two (`workers=2`).

Then anchored verification, as `cases verify --anchor FILE --public-key KEY.pub` does it: read
the signed checkpoint file recorded after the fill, check its Ed25519 signature, then
verify_all, the store against the file's heads, and the stored checkpoint chain. It runs in
the same process, interleaved with verify_all (`--rounds` each), and prints its rate as a share of
verify_all's (target: at least 0.8), in CPU time (the median of the paired rounds: load from
other work moves wall time by several times between rounds) and in wall time (best against
best). Every verification counts the checkpoint's own event too (N + 1).

    .venv/bin/python bench/verify.py [--events N] [--rounds R] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import groupby
from pathlib import Path

import sqlalchemy as sa

from domain.timeline import as_of
from eventstore import EventStore, NewEvent, open_store
from eventstore.checkpoint_files import (
    generate_key_pair,
    load_signing_key,
    read_checkpoint_file,
    verify_checkpoint_signature,
    write_checkpoint_file,
)
from eventstore.checkpoints import record_checkpoint, statement_of, verify_anchored
from eventstore.schema import events
from eventstore.store import _stored
from eventstore.verify import Verdict, _Part, _raw_rows, check_chain, verify_all

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
PER_CASE = 200


def fill(store: EventStore, total: int) -> None:
    """Cases of 200 CaseScoped-shaped events, appended 200 to a transaction."""
    for case in range(total // PER_CASE):
        case_id = f"cpc-E{case:08d}-2025"
        batch = [NewEvent(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/{n}")),
                          type="CaseScoped", schema_version=1,
                          occurred_at=T0 + timedelta(hours=n), actor="officer:bench",
                          payload={"scope": ["finance", "governance"], "visit_mode": "on_site"})
                 for n in range(PER_CASE)]
        store.append(case_id, 0, batch)


def read_all(store: EventStore) -> int:
    count = 0
    query = sa.select(events).order_by(events.c.case_id, events.c.version)
    with store.engine.connect().execution_options(stream_results=True, yield_per=5000) as conn:
        for row in conn.execute(query):
            _stored(row)
            count += 1
    return count


def read_raw(store: EventStore) -> int:
    """The rows verify_all fetches, straight from the DB-API cursor, and nothing else."""
    return sum(1 for _ in _raw_rows(store, _Part(), 5000))


def old_verify_all(store: EventStore) -> Verdict:
    """verify_all before the raw path: every row a `StoredEvent`, each case by check_chain."""
    verdict = Verdict()
    query = sa.select(events).order_by(events.c.case_id, events.c.version)
    with store.engine.connect().execution_options(stream_results=True, yield_per=5000) as conn:
        for _case_id, case_events in groupby(map(_stored, conn.execute(query)),
                                             key=lambda e: e.case_id):
            count, problem = check_chain(case_events)
            verdict.cases += 1
            verdict.events += count
            if problem is not None:
                verdict.problems.append(problem)
                for _ in case_events:  # count the rest of a bad case all the same
                    verdict.events += 1
    return verdict


def publish_checkpoint(store: EventStore, scratch: Path) -> tuple[Path, Path]:
    """Record a checkpoint of every case and publish it signed, as the worker does; (the
    file, the public key)."""
    key = scratch / "keys" / "checkpoints.key"
    public_key, _ = generate_key_pair(key)
    stored = record_checkpoint(store, event_id=str(uuid.uuid4()), at=T0,
                               actor="system:checkpoint")
    return write_checkpoint_file(scratch / "checkpoints", statement_of(stored),
                                 load_signing_key(key)), public_key


def anchored(store: EventStore, file: Path, public_key: Path) -> Verdict:
    """`cases verify --anchor FILE --public-key KEY.pub`, without the printing."""
    statement, signature, _ = read_checkpoint_file(file)
    assert verify_checkpoint_signature(statement, signature, public_key.read_bytes())
    return verify_anchored(store, statement)


def rates(count_events: Callable[[], int]) -> tuple[float, float]:
    """Events per second of wall time and per second of this process's CPU time: on a machine
    shared with other work, CPU time is what a comparison of two runs can trust."""
    wall, cpu = time.perf_counter(), time.process_time()
    events_seen = count_events()
    return (events_seen / (time.perf_counter() - wall),
            events_seen / (time.process_time() - cpu))


def rate(count_events: Callable[[], int]) -> float:
    started = time.perf_counter()
    events_seen = count_events()
    return events_seen / (time.perf_counter() - started)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2,
                        help="verify_all and anchored verification, interleaved, this many "
                             "times each (best of each kept)")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = open_store(args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}")
        store.migrate()
        started = time.perf_counter()
        fill(store, args.events)
        print(f"filled {args.events:,} events in {time.perf_counter() - started:.0f}s "
              f"({store.engine.dialect.name}; {os.cpu_count()} CPUs; load {load()})")
        started = time.perf_counter()
        anchor, public_key = publish_checkpoint(store, Path(scratch))
        print(f"recorded and published a signed checkpoint of every case in "
              f"{time.perf_counter() - started:.1f}s")

        def checked(verdict: Verdict) -> int:
            assert verdict.ok and verdict.events == args.events + 1, verdict.problems[:3]
            return verdict.events

        read_rate = rate(lambda: read_all(store))
        print(f"read rows into StoredEvent (old baseline) {read_rate:>10,.0f} events/s   "
              f"(load {load()})")
        raw_rate = rate(lambda: read_raw(store))
        print(f"fetch raw rows (DB-API cursor)            {raw_rate:>10,.0f} events/s   "
              f"(load {load()})")
        old_rate = rate(lambda: checked(old_verify_all(store)))
        print(f"old verify_all (StoredEvent+check_chain)  {old_rate:>10,.0f} events/s   "
              f"({old_rate / read_rate:.2f} of reading; load {load()})")
        for workers in (1, 2):
            verify_rate = rate(partial(lambda w: checked(verify_all(store, workers=w)), workers))
            print(f"verify_all, workers={workers}                    {verify_rate:>10,.0f} "
                  f"events/s   ({verify_rate / read_rate:.2f}x reading; target 100,000/s; "
                  f"load {load()})")
        plain: list[tuple[float, float]] = []
        anchored_rates: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            plain.append(rates(lambda: checked(verify_all(store))))
            anchored_rates.append(rates(lambda: checked(anchored(store, anchor, public_key))))
        for name, measured in (("verify_all, workers=1, beside the next   ", plain),
                               ("anchored verification (verify --anchor)  ", anchored_rates)):
            print(f"{name} {max(w for w, _ in measured):>10,.0f} events/s wall (best), "
                  f"{statistics.median(c for _, c in measured):>10,.0f} events/s of CPU "
                  f"(median); rounds: "
                  + ", ".join(f"{w:,.0f} wall / {c:,.0f} CPU" for w, c in measured))
        cpu_share = statistics.median(a[1] / p[1] for p, a in zip(plain, anchored_rates,
                                                                  strict=True))
        wall_share = max(w for w, _ in anchored_rates) / max(w for w, _ in plain)
        print(f"anchored / verify_all: {cpu_share:.2f} of its rate in CPU time (median of "
              f"{args.rounds} paired rounds), {wall_share:.2f} in wall time (best against "
              f"best); target 0.8; load {load()}")
        statement, _, _ = read_checkpoint_file(anchor)
        started = time.perf_counter()
        verify_anchored(store, statement, "cpc-E00000000-2025")
        print(f"  of which the published heads and the checkpoint chain, with one case "
              f"verified: {(time.perf_counter() - started) * 1000:.0f} ms")

        history = [e.to_recorded() for e in store.read_case("cpc-E00000000-2025")]
        timings = []
        for _ in range(50):
            started = time.perf_counter()
            stored = store.read_case("cpc-E00000000-2025")
            as_of([e.to_recorded() for e in stored], T0 + timedelta(hours=PER_CASE // 2))
            timings.append((time.perf_counter() - started) * 1000)
        fold_only = []
        for _ in range(50):
            started = time.perf_counter()
            as_of(history, T0 + timedelta(hours=PER_CASE // 2))
            fold_only.append((time.perf_counter() - started) * 1000)
        print(f"as-of state of a {PER_CASE}-event case: read + upcast + fold p50 "
              f"{statistics.median(timings):.1f} ms, fold alone p50 "
              f"{statistics.median(fold_only):.1f} ms")
        store.dispose()


if __name__ == "__main__":
    main()
