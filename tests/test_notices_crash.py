"""A worker SIGKILLed while its relay is mid-send: the next worker sends what was left, and
the mailbox holds each notice once (the resend carries the same Message-ID)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from eventstore import open_store
from eventstore.deliveries import deliveries_of
from runtime.mail_sink import MailSink
from tests.mail_support import until_received
from tests.support import register_council
from tests.test_notices_relay import COUNCIL, contacts_for, lapse, put_contacts

BIN = Path(sys.executable).parent


def start_worker(env: WorkflowEnvironment, database: Path,
                 sink: MailSink) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
               "CASES_DATABASE_URL": f"sqlite:///{database}", "CASES_SMTP_URL": sink.url,
               "CASES_MAIL_FROM": "cases@lga.example.org", "CASES_NOTICE_LEASE_SECONDS": "2"}
    return subprocess.Popen([str(BIN / "cases-worker"), "--task-queue", "notices-crash"],
                            env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def test_a_worker_killed_mid_send_leaves_one_copy_of_each_notice(
        dev_server_env: WorkflowEnvironment, tmp_path: Path) -> None:
    database = tmp_path / "cases.db"
    store = open_store(f"sqlite:///{database}")
    store.migrate()
    register_council(store, COUNCIL)
    put_contacts(store, contacts_for(COUNCIL))
    lapse(store)  # three notices
    with MailSink(tmp_path / "mail") as sink:
        sink.data_delay_seconds = 30  # the first message is kept, its 250 never comes
        first = start_worker(dev_server_env, database, sink)
        try:
            await until_received(sink, 1, "the relay's first message")
            assert len(sink.received()) == 1
        finally:
            kill(first)
        sink.data_delay_seconds = 0
        second = start_worker(dev_server_env, database, sink)
        try:
            for _ in range(400):
                finished = deliveries_of(store, now=datetime.now(UTC))
                if all(d.status == "sent" for d in finished):
                    break
                await asyncio.sleep(0.05)
        finally:
            kill(second)
        assert [d.status for d in deliveries_of(store, now=datetime.now(UTC))] == ["sent"] * 3
        ids = [m.message_id for m in sink.received()]
        assert len(ids) == len(set(ids)) == 3  # one copy of each in the mailbox
        assert sink.duplicates() == 1  # the one resent after the kill, not kept again
    store.dispose()
