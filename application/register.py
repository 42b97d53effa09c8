"""The public register of corporate peer challenges (issue 18): every English council, its last
challenge, when the next is due, and whether the council published the report, the action
plan and the progress review report on time, linked to where it published them.

Read from the read models and the council register only, as they stand (a public page never
writes, so it does not catch the projection up). What the public sees is dates, verdicts and
the councils' own https addresses: never a case's free text, a peer, a draft or a comment,
because nothing here reads them (the summaries' dates and addresses, not the folded state).
The page, the CSV, the JSON and the Atom feed are all made from these rows, so they agree.

Cost: the register is three queries (the projection's status, the council register, the
council summaries joined to their last case's stage), whatever the number of cases; the feed
adds one over the corporate cases' dates.
"""

from __future__ import annotations

import csv
import heapq
import io
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree as ET

import sqlalchemy as sa
from sqlalchemy import Engine

from domain.councils import Council, english_councils
from domain.deadlines import DeadlineRules
from domain.read_models import ACTION_PLAN_DAYS, REPORT_DAYS, days_late
from domain.vocabulary import CaseKind, Stage
from eventstore import EventStore
from eventstore.councils import known_councils
from eventstore.projections import ProjectionBroken, require_sound
from eventstore.schema import case_summaries, council_summaries

PROGRESS_REVIEW_REPORT_DAYS = DeadlineRules().progress_review_publication.days
"""A progress review report is due 12 months (365 days) after the visit's last day."""
DUE_WITHIN = timedelta(days=365)
"""A council shows as due for its next challenge in the last year before the 5 years are up,
and as overdue once they are (BRIEF §2: "the council shows as due, then overdue")."""
FEED_LIMIT = 200
TYPE_NAMES = {"CTY": "County council", "NMD": "District council", "UA": "Unitary authority",
              "MD": "Metropolitan borough", "LBO": "London borough", "CC": "City corporation"}
"""The register's English council types, in the words a reader knows them by."""
_HTTPS = re.compile(
    r"^https://[^\s\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]{1,500}$")
_FEED_IDS = uuid.UUID("0b8f2f8e-3c1a-5d52-9a0e-6f1c2d3e4a5b")
"""Namespace of the feed's entry ids: uuid5 of (case, step, what happened), stable forever."""
ATOM = "http://www.w3.org/2005/Atom"
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
"""Characters XML 1.0 cannot carry at all, escaped or not."""


class RegisterUnavailable(RuntimeError):
    """The read models stopped on a problem in the events: nothing is served from them."""


class Verdict(StrEnum):
    """What the public is told of one publication."""

    ON_TIME = "on_time"
    LATE = "late"
    NOT_PUBLISHED = "not_published"
    NOT_YET_DUE = "not_yet_due"
    NOT_REQUIRED = "not_required"
    """A progress review report of a challenge the programme closed without one."""


class NextDue(StrEnum):
    NOT_YET_DUE = "not_yet_due"
    DUE_NOW = "due_now"
    OVERDUE = "overdue"


def public_url(url: str | None) -> str | None:
    """The address if it is one a reader may follow (https, a host, no spaces or controls);
    None otherwise: an http:// or odd address is never shown as a link, nor downloaded."""
    if url is None or not _HTTPS.match(url):
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return url if host else None


@dataclass(frozen=True, slots=True)
class Publication:
    """One thing the council must publish after its challenge: when, and whether it did."""

    due_on: date
    published_on: date | None
    url: str | None
    """https only (`public_url`)."""
    verdict: Verdict
    days: int | None
    """Late: days after `due_on` it was published. Not published: days overdue."""

    @property
    def lapsed(self) -> bool:
        return self.verdict in (Verdict.LATE, Verdict.NOT_PUBLISHED)

    @property
    def words(self) -> str:
        if self.verdict == Verdict.LATE:
            return f"{self.days} day{'s' if self.days != 1 else ''} late"
        return _VERDICT_WORDS[self.verdict]

    @property
    def colour(self) -> str:
        return _VERDICT_COLOURS[self.verdict]


_VERDICT_WORDS = {Verdict.ON_TIME: "On time", Verdict.NOT_PUBLISHED: "Not published",
                  Verdict.NOT_YET_DUE: "Not yet due", Verdict.NOT_REQUIRED: "Not required"}
_VERDICT_COLOURS = {Verdict.ON_TIME: "green", Verdict.LATE: "orange",
                    Verdict.NOT_PUBLISHED: "red", Verdict.NOT_YET_DUE: "grey",
                    Verdict.NOT_REQUIRED: "grey"}


def publication(due_on: date, published_on: date | None, url: str | None, today: date, *,
                required: bool = True) -> Publication:
    """The verdict on one publication as of `today`."""
    late = days_late(published_on, due_on, today)
    if published_on is not None:
        verdict = Verdict.LATE if late else Verdict.ON_TIME
    elif not required:
        verdict, late = Verdict.NOT_REQUIRED, None
    else:
        verdict = Verdict.NOT_PUBLISHED if late else Verdict.NOT_YET_DUE
    return Publication(due_on=due_on, published_on=published_on, url=public_url(url),
                       verdict=verdict, days=late or None)


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One council of the register, as the public sees it."""

    gss_code: str
    name: str
    short_name: str
    type: str
    region: str
    last_visit_on: date | None
    """The last day of the last corporate peer challenge's visit; None: none known."""
    corporate_challenges: int
    next_due_on: date | None
    next_due: NextDue
    report: Publication | None
    action_plan: Publication | None
    progress_review_on: date | None
    progress_review: Publication | None
    """Its report's publication."""

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, self.type)

    @property
    def late_or_unpublished(self) -> bool:
        return any(p is not None and p.lapsed
                   for p in (self.report, self.action_plan, self.progress_review))

    def record(self) -> dict[str, Any]:
        """The row for the CSV and JSON downloads (`COLUMNS`): flat, dates as YYYY-MM-DD."""
        record: dict[str, Any] = {
            "gss_code": self.gss_code, "name": self.name, "short_name": self.short_name,
            "type": self.type, "type_name": self.type_name, "region": self.region,
            "last_challenge_visit_ended_on": _iso(self.last_visit_on),
            "corporate_challenges": self.corporate_challenges,
            "next_due_on": _iso(self.next_due_on), "next_due": self.next_due.value}
        for prefix, step in (("report", self.report), ("action_plan", self.action_plan),
                             ("progress_review_report", self.progress_review)):
            record |= {f"{prefix}_due_on": _iso(step.due_on) if step else None,
                       f"{prefix}_published_on": _iso(step.published_on) if step else None,
                       f"{prefix}_status": step.verdict.value if step else None,
                       f"{prefix}_days_late": step.days if step else None,
                       f"{prefix}_url": step.url if step else None}
            if prefix == "action_plan":
                record["progress_review_held_on"] = _iso(self.progress_review_on)
        return record


_STEP_COLUMNS = ("due_on", "published_on", "status", "days_late", "url")
COLUMNS = ("gss_code", "name", "short_name", "type", "type_name", "region",
           "last_challenge_visit_ended_on", "corporate_challenges", "next_due_on", "next_due",
           *(f"report_{c}" for c in _STEP_COLUMNS), *(f"action_plan_{c}" for c in _STEP_COLUMNS),
           "progress_review_held_on", *(f"progress_review_report_{c}" for c in _STEP_COLUMNS))
"""The downloads' columns, in order."""


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


@dataclass(frozen=True)
class RegisterFilter:
    """The reader's choice of rows; every field optional (GET parameters, so a link keeps it)."""

    region: str | None = None
    type: str | None = None
    late_only: bool = False

    def keeps(self, row: RegisterRow) -> bool:
        return ((self.region is None or row.region == self.region)
                and (self.type is None or row.type == self.type)
                and (not self.late_only or row.late_or_unpublished))

    def query(self) -> str:
        """The filter as a query string (`?region=London&late=yes`), or '' for none."""
        pairs = [(k, v) for k, v in (("region", self.region), ("type", self.type),
                                     ("late", "yes" if self.late_only else None)) if v]
        return f"?{urlencode(pairs)}" if pairs else ""

    def as_json(self) -> dict[str, Any]:
        return {"region": self.region, "type": self.type,
                "late_or_unpublished_only": self.late_only}


@dataclass(frozen=True)
class Register:
    rows: list[RegisterRow]
    """The rows the filter keeps, by council name."""
    total: int
    """Every English council of the register."""
    regions: list[str]
    types: list[tuple[str, str]]
    """(code, name) of the types present."""
    filter: RegisterFilter
    today: date


def choose(councils: Sequence[Council], region: str | None, type_: str | None,
           late: str | None) -> RegisterFilter:
    """The filter asked for, keeping only a region or type the register has (anything else
    is ignored, as if not asked)."""
    regions = {c.region for c in councils if c.region}
    types = {c.type for c in councils}
    return RegisterFilter(region=region if region in regions else None,
                          type=type_ if type_ in types else None,
                          late_only=late in ("yes", "true", "on", "1"))


def _sound(engine: Engine) -> None:
    try:
        require_sound(engine)
    except ProjectionBroken as broken:
        raise RegisterUnavailable(
            "the records it is read from failed a check, and nothing is shown from them until "
            "they have been verified and rebuilt") from broken


def _summaries(engine: Engine) -> dict[str, Mapping[Any, Any]]:
    """Each council's summary with its last case's stage: one query."""
    query = sa.select(council_summaries, case_summaries.c.stage).select_from(
        council_summaries.outerjoin(
            case_summaries, case_summaries.c.case_id == council_summaries.c.last_case_id))
    with engine.connect() as conn:
        return {row.gss_code: row._mapping for row in conn.execute(query)}


def english(store: EventStore) -> list[Council]:
    """The register's English councils, by their everyday name."""
    return sorted(english_councils(known_councils(store).values()),
                  key=lambda c: (c.short_name.casefold(), c.gss_code))


def register(store: EventStore, *, region: str | None = None, type_: str | None = None,
             late: str | None = None, today: date | None = None) -> Register:
    """The register's rows the filter keeps; RegisterUnavailable if the projection stopped."""
    day = today or datetime.now(UTC).date()
    _sound(store.engine)
    councils = english(store)
    summaries = _summaries(store.engine)
    chosen = choose(councils, region, type_, late)
    rows = [row_of(c, summaries.get(c.gss_code), day) for c in councils]
    return Register(
        rows=[r for r in rows if chosen.keeps(r)], total=len(rows),
        regions=sorted({c.region for c in councils if c.region}),
        types=sorted(((t, TYPE_NAMES.get(t, t)) for t in {c.type for c in councils}),
                     key=lambda pair: pair[1]),
        filter=chosen, today=day)


def row_of(council: Council, summary: Mapping[Any, Any] | None, today: date) -> RegisterRow:
    """A council's row from its summary. With none (no corporate challenge known) one is due
    now; a progress review report is not required of a challenge closed without one."""
    if summary is None:
        return RegisterRow(council.gss_code, council.name, council.short_name, council.type,
                           council.region or "", None, 0, None, NextDue.DUE_NOW, None, None,
                           None, None)
    ended: date = summary["visit_ended_on"]
    next_due_on: date = summary["next_due_on"]
    stage = summary["stage"]
    ended_without = stage is not None and not Stage(stage).is_open
    return RegisterRow(
        council.gss_code, council.name, council.short_name, council.type, council.region or "",
        last_visit_on=ended, corporate_challenges=summary["corporate_challenges"],
        next_due_on=next_due_on,
        next_due=(NextDue.OVERDUE if today > next_due_on else
                  NextDue.DUE_NOW if today >= next_due_on - DUE_WITHIN else
                  NextDue.NOT_YET_DUE),
        report=publication(summary["report_due_on"], summary["report_published_on"],
                           summary["report_url"], today),
        action_plan=publication(summary["action_plan_due_on"],
                                summary["action_plan_published_on"],
                                summary["action_plan_url"], today),
        progress_review_on=summary["progress_review_on"],
        progress_review=publication(
            ended + timedelta(days=PROGRESS_REVIEW_REPORT_DAYS),
            summary["progress_review_published_on"], summary["progress_review_url"], today,
            required=not ended_without))


# --- downloads ----------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with `'`."""
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA) else text


def as_csv(rows: Iterable[RegisterRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        record = row.record()
        writer.writerow([_cell(record[c]) for c in COLUMNS])
    return out.getvalue()


def as_json(found: Register) -> dict[str, Any]:
    return {"today": found.today.isoformat(), "filter": found.filter.as_json(),
            "councils": len(found.rows), "of": found.total,
            "rows": [row.record() for row in found.rows]}


# --- the feed -----------------------------------------------------------------------------

_STEPS = (("report", "report", "report_published_on", "report_url",
           timedelta(days=REPORT_DAYS)),
          ("action_plan", "action plan", "action_plan_published_on", "action_plan_url",
           timedelta(days=ACTION_PLAN_DAYS)),
          ("progress_review", "progress review report", "progress_review_published_on",
           "progress_review_url", timedelta(days=PROGRESS_REVIEW_REPORT_DAYS)))


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A publication, or a deadline passed without one."""

    id: str
    at: datetime
    title: str
    summary: str
    url: str | None
    """The publication's https address; None: the council's row of the register."""
    gss_code: str


def feed_entries(store: EventStore, *, today: date | None = None,
                 limit: int = FEED_LIMIT) -> list[FeedEntry]:
    """Every corporate case's publications and lapses, newest first, at most `limit`.

    Nothing a case records happens before its visit ended, so the cases are read newest visit
    first and the reading stops at the first whose visit ended before the oldest entry kept:
    a few hundred rows, however many cases. Which entries is worked out from dates alone;
    only those kept are written out."""
    day = today or datetime.now(UTC).date()
    _sound(store.engine)
    names = {c.gss_code: c.short_name for c in english(store)}
    query = sa.select(
        case_summaries.c.case_id, case_summaries.c.council, case_summaries.c.stage,
        case_summaries.c.visit_ended_on, *(case_summaries.c[s[2]] for s in _STEPS),
        *(case_summaries.c[s[3]] for s in _STEPS),
    ).where(case_summaries.c.kind == CaseKind.CORPORATE_PEER_CHALLENGE.value,
            case_summaries.c.visit_ended_on.is_not(None)
            ).order_by(case_summaries.c.visit_ended_on.desc(), case_summaries.c.case_id)
    kept: list[_Moment] = []
    read: list[Mapping[Any, Any]] = []
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            if len(kept) >= limit and row.visit_ended_on < kept[0][0]:
                break
            if row.council not in names:
                continue
            read.append(row._mapping)
            for moment in _moments(read[-1], len(read) - 1, day):
                if len(kept) < limit:
                    heapq.heappush(kept, moment)
                elif moment > kept[0]:
                    heapq.heapreplace(kept, moment)
    return [_entry(read[index], names[read[index]["council"]], step, lapsed, day)
            for _when, _case_id, step, lapsed, index in sorted(kept, reverse=True)]


_Moment = tuple[date, str, int, bool, int]
"""(the day it happened, case, step, a lapse?, the case's index): cheap to sort."""


def _moments(case: Mapping[Any, Any], index: int, today: date) -> Iterable[_Moment]:
    ended: date = case["visit_ended_on"]
    closed = not Stage(case["stage"]).is_open
    for step, (name, _words_of, published_column, _url, allowed) in enumerate(_STEPS):
        due = ended + allowed
        published: date | None = case[published_column]
        if published is not None:
            yield published, case["case_id"], step, False, index
        required = name != "progress_review" or not closed
        if required and today > due and (published is None or published > due):
            yield due + timedelta(days=1), case["case_id"], step, True, index


def _entry(case: Mapping[Any, Any], name: str, step: int, lapsed: bool,
           today: date) -> FeedEntry:
    key, words, published_column, url_column, allowed = _STEPS[step]
    ended: date = case["visit_ended_on"]
    due = ended + allowed
    published: date | None = case[published_column]
    history = f"Visit ended {_words(ended)}; {words} due {_words(due)}; "
    if lapsed:
        return FeedEntry(
            id=_entry_id(case["case_id"], key, "lapsed"), at=_midnight(due + timedelta(days=1)),
            title=f"{name} did not publish its peer challenge {words} by {_words(due)}",
            summary=history + (f"published {_words(published)}." if published
                               else "not published."),
            url=None, gss_code=case["council"])
    assert published is not None
    late = days_late(published, due, today) or 0
    when = "on time" if not late else f"{late} day{'s' if late != 1 else ''} late"
    return FeedEntry(
        id=_entry_id(case["case_id"], key, "published"), at=_midnight(published),
        title=f"{name} published its peer challenge {words} ({when})",
        summary=history + f"published {_words(published)}, {when}.",
        url=public_url(case[url_column]), gss_code=case["council"])


def _entry_id(case_id: str, step: str, what: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_FEED_IDS, f'{case_id}/{step}/{what}')}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _words(day: date) -> str:
    return f"{day.day} {day.strftime('%B %Y')}"


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def as_atom(entries: Sequence[FeedEntry], *, register_url: str, feed_url: str,
            today: date) -> bytes:
    """An Atom 1.0 document (RFC 4287) of the entries; every text escaped by the writer."""
    ET.register_namespace("", ATOM)

    def add(parent: ET.Element, tag: str, text: str | None = None,
            **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}",
                                {k: _NOT_XML.sub("", v) for k, v in attributes.items()})
        element.text = _NOT_XML.sub("", text) if text is not None else None
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    add(feed, "id", f"urn:uuid:{uuid.uuid5(_FEED_IDS, 'register')}")
    add(feed, "title", "Corporate peer challenges: publications and lapses")
    add(feed, "subtitle", "Councils' peer challenge reports, action plans and progress review "
                          "reports: published, and deadlines passed without publication.")
    add(feed, "updated", _stamp(entries[0].at if entries else _midnight(today)))
    add(feed, "link", rel="self", href=feed_url, type="application/atom+xml")
    add(feed, "link", rel="alternate", href=register_url, type="text/html")
    author = add(feed, "author")
    add(author, "name", "Improvement cases")
    for entry in entries:
        item = add(feed, "entry")
        add(item, "id", entry.id)
        add(item, "title", entry.title)
        add(item, "updated", _stamp(entry.at))
        add(item, "link", rel="alternate",
            href=entry.url or f"{register_url}#{entry.gss_code}")
        add(item, "summary", entry.summary)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
