"""`cases demo` with CASES_SMTP_URL set: the demo's escalations reach the made-up people of
its contacts file, and `cases outbox` shows them sent (issue 19's "done when")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runtime.mail_sink import MailSink

CASES = str(Path(sys.executable).parent / "cases")
LAPSING = "E08000025"  # the demo's council that lets its report lapse (Birmingham, West Midlands)


def test_the_demo_emails_its_escalations_to_the_right_people(tmp_path: Path) -> None:
    with MailSink(tmp_path / "mail") as sink:
        env = {**os.environ, "CASES_SMTP_URL": sink.url,
               "CASES_DATABASE_URL": f"sqlite:///{tmp_path}/demo.db",
               "CASES_MAIL_FROM": "cases@lga.example.org", "HOME": str(tmp_path)}
        env.pop("CASES_API_URL", None)
        demo = subprocess.run([CASES, "demo"], env=env, capture_output=True, text=True,
                              timeout=600, cwd=tmp_path)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "Notices: " in demo.stdout and " sent;" in demo.stdout
        received = {(to, m.subject) for m in sink.received() for to in m.recipients}
    case = f"cpc-{LAPSING}-"
    ceo = f"chief.executive@{LAPSING.lower()}.councils.example.org"
    adviser = "principal.adviser.west-midlands@lga.example.org"
    assert any(to == ceo and case in subject and "escalation level 1" in subject
               for to, subject in received), received
    assert any(to == adviser and case in subject and "escalation level 2" in subject
               for to, subject in received), received
    assert any(to == adviser and "escalation resolved" in subject for to, subject in received)

    outbox = subprocess.run([CASES, "outbox", "--json"], env=env, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert outbox.returncode == 0, outbox.stderr
    notices = json.loads(outbox.stdout)
    escalations = [n for n in notices if n["kind"] == "escalation_raised"]
    assert escalations and all(n["status"] == "sent" for n in notices)
    assert {tuple(n["sent_to"]) for n in escalations} == {(ceo,), (adviser,)}
