"""Past peer challenges, read from a CSV file of one challenge per row, as the events of a case.

Pure: `read_history` checks a whole file against the register and today's date, and answers
with every challenge or with every problem (by row and column); `events_of` gives the events
one challenge becomes. Nothing here decides case ids or writes: the application layer does
(application/history_import.py), importing the whole file or nothing.

The columns (a header row names them; their order is free):

    council                       GSS code, in the register
    kind                          the engine's kind name, e.g. corporate_peer_challenge
    visit_start, visit_end        the visit's first and last days (required)
    report_published_on           empty: not published
    action_plan_published_on      empty: not published
    progress_review_on            the progress review's (last) day; empty: not held
    progress_review_published_on  empty: not published

and, optionally:

    requested_on                  the day the council asked for it (default: visit_start)
    visit_mode                    on_site (default) or remote
    report_url, action_plan_url, progress_review_url
                                  where each publication is (https only)
    closed_on                     the day the programme closed it without the later steps
                                  (older challenges, before progress reviews were the rule)
    source                        the row's own reference, e.g. the report's title

A challenge whose progress review report was published, or with a `closed_on`, is finished:
it becomes a closed case. Any other is still under way: a live case at its stage, whose
deadlines run from its real dates (and may already have lapsed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain.councils import Council
from domain.rules import MAX_VISIT_DAYS
from domain.vocabulary import CaseKind, VisitMode

REQUIRED = ("council", "kind", "visit_start", "visit_end", "report_published_on",
            "action_plan_published_on", "progress_review_on", "progress_review_published_on")
OPTIONAL = ("requested_on", "visit_mode", "report_url", "action_plan_url",
            "progress_review_url", "closed_on", "source")
MAX_ROWS = 10_000
MAX_SOURCE = 200
_GSS = re.compile(r"^[EKNSW][0-9]{8}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_HTTPS = re.compile(r"^https://[^\s\u0000-\u001f\u007f-\u009f]{1,500}$")
STANDARD_POLICY = "standard"


class PastChallenge(BaseModel):
    """One row of the file, checked."""

    model_config = ConfigDict(frozen=True)

    row: int
    """The file's line (the header is line 1)."""
    council: str
    kind: CaseKind
    requested_on: date
    visit_mode: VisitMode
    visit_start: date
    visit_end: date
    report_published_on: date | None = None
    report_url: str | None = None
    action_plan_published_on: date | None = None
    action_plan_url: str | None = None
    progress_review_on: date | None = None
    progress_review_published_on: date | None = None
    progress_review_url: str | None = None
    closed_on: date | None = None
    source: str | None = None

    @property
    def finished(self) -> bool:
        return self.progress_review_published_on is not None or self.closed_on is not None


@dataclass(frozen=True)
class Problem:
    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class HistoryRefused(ValueError):
    """The file is refused whole; every problem found is listed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:20])
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"nothing imported: {len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''}: {shown}{more}")


class _Row:
    """One row being read: each cell's checks add to the file's problems."""

    def __init__(self, number: int, cells: Mapping[str, str | None],
                 problems: list[Problem]) -> None:
        self.number = number
        self.cells = cells
        self.problems = problems

    def text(self, column: str) -> str:
        return (self.cells.get(column) or "").strip()

    def problem(self, column: str | None, message: str) -> None:
        self.problems.append(Problem(self.number, column, message))

    def day(self, column: str, today: date, *, required: bool = False) -> date | None:
        text = self.text(column)
        if not text:
            if required:
                self.problem(column, "required (YYYY-MM-DD)")
            return None
        if not _DATE.match(text):
            self.problem(column, f"{text!r} is not a date (YYYY-MM-DD)")
            return None
        try:
            day = date.fromisoformat(text)
        except ValueError:
            self.problem(column, f"{text} is not a date that exists")
            return None
        if day > today:
            self.problem(column, f"{day} is in the future (today is {today})")
            return None
        if day < date(1990, 1, 1):
            self.problem(column, f"{day} is before 1990")
            return None
        return day

    def url(self, column: str, published: date | None) -> str | None:
        text = self.text(column)
        if not text:
            return None
        if published is None:
            self.problem(column, "an address for something not published (its date is empty)")
        elif not _HTTPS.match(text):
            self.problem(column, "must be an https:// address of at most 500 characters")
        else:
            return text
        return None

    def not_before(self, column: str, day: date | None, limit: date | None,
                   what: str) -> None:
        if day is not None and limit is not None and day < limit:
            self.problem(column, f"{day} is before {what} ({limit})")


def read_history(rows: Iterable[Mapping[str, str | None]], header: Iterable[str],
                 councils: Mapping[str, Council], today: date) -> list[PastChallenge]:
    """Every row of the file as a past challenge, or HistoryRefused with every problem."""
    problems: list[Problem] = []
    columns = [c.strip() for c in header if c is not None]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED and c not in OPTIONAL]
    if missing:
        problems.append(Problem(1, None, f"the header lacks {', '.join(missing)}"))
    if unknown:
        problems.append(Problem(1, None, f"unknown columns {', '.join(unknown)} (the columns "
                                         f"are {', '.join(REQUIRED + OPTIONAL)})"))
    if problems:
        raise HistoryRefused(problems)
    challenges: list[PastChallenge] = []
    seen: dict[tuple[str, str, date], int] = {}
    under_way: dict[tuple[str, str], int] = {}
    for index, cells in enumerate(rows, start=2):
        if index - 1 > MAX_ROWS:
            problems.append(Problem(index, None, f"more than {MAX_ROWS} rows; split the file"))
            break
        row = _Row(index, {k.strip(): v for k, v in cells.items() if k is not None}, problems)
        if None in cells:
            row.problem(None, "more cells than the header has columns")
        challenge = _challenge(row, councils, today)
        if challenge is None:
            continue
        key = (challenge.council, challenge.kind.value, challenge.visit_start)
        if key in seen:
            row.problem(None, f"the same challenge as row {seen[key]} (council, kind and "
                              "visit_start)")
            continue
        seen[key] = index
        if not challenge.finished:
            slot = (challenge.council, challenge.kind.value)
            if slot in under_way:
                row.problem(None, f"a second {challenge.kind.value} of {challenge.council} "
                                  f"still under way (row {under_way[slot]} is the other); "
                                  "give the older one its closed_on")
                continue
            under_way[slot] = index
            if not councils[challenge.council].current:
                row.problem("council", f"{challenge.council} has ended: a challenge still under "
                                       "way needs a current council (give it a closed_on)")
                continue
        challenges.append(challenge)
    if not challenges and not problems:
        problems.append(Problem(1, None, "the file has no rows"))
    if problems:
        raise HistoryRefused(problems)
    return challenges


def _challenge(row: _Row, councils: Mapping[str, Council],
               today: date) -> PastChallenge | None:
    before = len(row.problems)
    council = row.text("council")
    if not _GSS.match(council):
        row.problem("council", f"{council!r} is not a GSS code like E06000001")
    elif council not in councils:
        row.problem("council", f"{council} is not in the register (`cases councils import`)")
    kind_text = row.text("kind")
    kinds = [k.value for k in CaseKind]
    if kind_text not in kinds:
        row.problem("kind", f"{kind_text!r} is not a kind (one of {', '.join(kinds)})")
    mode_text = row.text("visit_mode") or VisitMode.ON_SITE.value
    if mode_text not in [m.value for m in VisitMode]:
        row.problem("visit_mode", f"{mode_text!r}: on_site or remote")
    start = row.day("visit_start", today, required=True)
    end = row.day("visit_end", today, required=True)
    requested = row.day("requested_on", today)
    report = row.day("report_published_on", today)
    plan = row.day("action_plan_published_on", today)
    review = row.day("progress_review_on", today)
    review_report = row.day("progress_review_published_on", today)
    closed = row.day("closed_on", today)
    if start is not None and end is not None:
        if end < start:
            row.problem("visit_end", f"{end} is before visit_start ({start})")
        elif (end - start).days + 1 > MAX_VISIT_DAYS:
            row.problem("visit_end", f"a visit of more than {MAX_VISIT_DAYS} days")
    row.not_before("visit_start", start, requested, "requested_on")
    row.not_before("report_published_on", report, end, "visit_end")
    row.not_before("action_plan_published_on", plan, report, "report_published_on")
    row.not_before("progress_review_on", review, end, "visit_end")
    row.not_before("progress_review_published_on", review_report, review, "progress_review_on")
    for column, day, needs, needed in (
            ("action_plan_published_on", plan, report, "report_published_on"),
            ("progress_review_on", review, plan, "action_plan_published_on"),
            ("progress_review_published_on", review_report, review, "progress_review_on")):
        if day is not None and needs is None and not _empty_problem(row, needed):
            row.problem(column, f"given without {needed}: the steps come in order")
    last_step = max((d for d in (end, report, plan, review, review_report) if d), default=None)
    row.not_before("closed_on", closed, last_step, "the last step it records")
    urls = (row.url("report_url", report), row.url("action_plan_url", plan),
            row.url("progress_review_url", review_report))
    source = row.text("source") or None
    if source is not None and (len(source) > MAX_SOURCE or not source.isprintable()):
        row.problem("source", f"at most {MAX_SOURCE} printable characters")
    if len(row.problems) > before or start is None or end is None:
        return None
    return PastChallenge(
        row=row.number, council=council, kind=CaseKind(kind_text),
        requested_on=requested or start, visit_mode=VisitMode(mode_text), visit_start=start,
        visit_end=end, report_published_on=report, report_url=urls[0],
        action_plan_published_on=plan, action_plan_url=urls[1], progress_review_on=review,
        progress_review_published_on=review_report, progress_review_url=urls[2],
        closed_on=closed, source=source)


def _empty_problem(row: _Row, column: str) -> bool:
    """Whether `column` of this row was already found wrong (so its emptiness is not news)."""
    return any(p.row == row.number and p.column == column for p in row.problems)


def events_of(challenge: PastChallenge, file_sha256: str) -> list[ev.Event]:
    """The events one past challenge becomes, its request first: the request records where it
    came from and how many of the case's first events are imported."""
    steps: list[ev.Event] = [ev.VisitHeld(mode=challenge.visit_mode,
                                          started_on=challenge.visit_start,
                                          ended_on=challenge.visit_end)]
    if challenge.report_published_on is not None:
        steps.append(ev.ReportPublished(report_version=1,
                                        published_on=challenge.report_published_on,
                                        url=challenge.report_url))
    if challenge.action_plan_published_on is not None:
        steps.append(ev.ActionPlanPublished(published_on=challenge.action_plan_published_on,
                                            url=challenge.action_plan_url))
    if challenge.progress_review_on is not None:
        steps.append(ev.ProgressReviewHeld(mode=VisitMode.ON_SITE,
                                           started_on=challenge.progress_review_on,
                                           ended_on=challenge.progress_review_on))
    if challenge.progress_review_published_on is not None:
        steps.append(ev.ProgressReviewPublished(
            published_on=challenge.progress_review_published_on,
            url=challenge.progress_review_url))
    if challenge.finished:
        when = challenge.closed_on or challenge.progress_review_published_on
        steps.append(ev.CaseClosed(summary=f"a past peer challenge, imported; closed on {when}"))
    reason = f"A past peer challenge, imported from row {challenge.row}"
    request = ev.CaseRequested(
        council=challenge.council, kind=challenge.kind,
        reason=f"{reason}: {challenge.source}" if challenge.source else reason,
        deadline_policy=STANDARD_POLICY, four_eyes=True, requested_on=challenge.requested_on,
        business_dates=True,
        imported=ev.ImportedFrom(file_sha256=file_sha256, row=challenge.row,
                                 events=1 + len(steps), source=challenge.source))
    return [request, *steps]


def provenance(first: ev.Event) -> tuple[str, int] | None:
    """(file digest, row) of an imported case's request; None for any other event."""
    if isinstance(first, ev.CaseRequested) and first.imported is not None:
        return first.imported.file_sha256, first.imported.row
    return None

