"""Councils as the register knows them: code, name, type, place in county and combined authority.

Pure: `parse_register` reads rows as `csv.DictReader` yields them from the register of UK local
authorities (mySociety's `uk_local_authorities_current.csv`); opening the file is the caller's
job. The project never commits a copy of that register: `BUILT_IN_COUNCILS` holds a handful of
real councils, their values copied from it, so a demo works without importing anything.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.table_rows import CellProblem, RowReader, TableError
from domain.vocabulary import GssCode

ENGLISH_COUNCIL_TYPES = frozenset({"CTY", "NMD", "UA", "MD", "LBO", "CC"})
"""Register types that are councils in England: county, district, unitary, metropolitan
district, London borough, City of London. Combined (COMB) and strategic (SRA) authorities are
not: 317 current English councils remain once they are set aside."""

EARTH_RADIUS_KM = 6371.0088
"""Mean radius of the Earth (IUGG), for `distance_km`."""

RegisterCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9-]{1,9}$")]
"""A register's own short code: the council's (`CRY`), its county's (`HAM`), a combined
authority's (`GMCA`)."""


class Council(BaseModel):
    """One council of the register. Frozen; positions are WGS84 degrees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gss_code: GssCode
    code: RegisterCode
    """The register's three-letter code (`local-authority-code`), e.g. `HAM` for Hampshire."""
    name: str = Field(min_length=1, max_length=200)
    """Official name, e.g. `London Borough of Croydon`."""
    short_name: str = Field(min_length=1, max_length=200)
    """The register's `nice-name`, e.g. `Croydon`."""
    type: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,5}$")]
    """`local-authority-type`: CTY, NMD, UA, MD, LBO, CC, COMB, SRA, SCO, WPA, NID."""
    nation: str = Field(min_length=1, max_length=40)
    region: str | None = None
    county: RegisterCode | None = None
    """`county-la`: the code of the county council a district sits in, or None."""
    combined_authority: RegisterCode | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    current: bool = True
    start_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long go together: give both or neither")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"ends ({self.end_date}) before it starts ({self.start_date})")
        return self

    @property
    def county_area(self) -> str | None:
        """The county this council belongs to for the same-county rule: a district's
        `county-la`, or a county council's own code (Hampshire is in HAM with its districts)."""
        if self.county is not None:
            return self.county
        return self.code if self.type == "CTY" else None

    @property
    def is_english_council(self) -> bool:
        """A current council in England (not a combined or strategic authority)."""
        return self.current and self.nation == "England" and self.type in ENGLISH_COUNCIL_TYPES

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.long is not None


def distance_km(a: Council, b: Council) -> float:
    """Great-circle (haversine) distance between two councils' positions, in km.

    Raises ValueError when either has no position in the register."""
    if a.lat is None or a.long is None or b.lat is None or b.long is None:
        missing = a if not a.has_position else b
        raise ValueError(f"{missing.short_name} ({missing.gss_code}) has no position")
    return haversine_km(a.lat, a.long, b.lat, b.long)


def haversine_km(lat1: float, long1: float, lat2: float, long2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(long2 - long1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


# --- the register ---------------------------------------------------------------------------

REGISTER_COLUMNS = (
    "gss-code", "local-authority-code", "official-name", "nice-name", "local-authority-type",
    "nation", "region", "county-la", "combined-authority", "lat", "long", "current-authority",
    "start-date", "end-date",
)
"""The columns `parse_register` reads; any others are ignored."""


RegisterProblem = CellProblem
"""A cell of the register; its `row` counts data rows, 1 for the first row after the header."""


class RegisterError(TableError):
    """The register could not be read; `problems` lists every bad cell found."""

    def __init__(self, problems: Sequence[CellProblem]) -> None:
        super().__init__("the council register", problems)


class _Row(RowReader):
    """One register row being read."""

    def number_or_none(self, column: str) -> float | None:
        value = self.text(column)
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            self.problem(column, value, "is not a number")
            return None
        if not math.isfinite(number):
            self.problem(column, value, "is not a finite number")
            return None
        return number

    def date_or_none(self, column: str) -> date | None:
        value = self.text(column)
        return self.day(column, value) if value else None

    def flag(self, column: str) -> bool:
        value = self.text(column)
        if value not in ("True", "False"):
            self.problem(column, value, "must be True or False")
        return value == "True"


def parse_register(rows: Iterable[Mapping[str, str | None]]) -> list[Council]:
    """Councils from the register's rows, as `csv.DictReader` gives them, in their order.

    A former authority without a GSS code (the 26 pre-2015 Northern Irish districts) cannot
    be named by the engine and is left out; a current one without a code is a problem. Every
    problem found (missing column, empty or malformed cell, duplicate GSS code, a value the
    `Council` model refuses) is collected and raised together as `RegisterError`.
    """
    problems: list[RegisterProblem] = []
    councils: list[Council] = []
    first_row_at: dict[str, int] = {}
    for number, raw in enumerate(rows, start=1):
        if number == 1:
            missing = [c for c in REGISTER_COLUMNS if c not in raw]
            if missing:
                raise RegisterError([RegisterProblem(0, c, "", "column is missing from the "
                                                     "header") for c in missing])
        row = _Row(number, raw, problems)
        before = len(problems)
        current = row.flag("current-authority")
        gss = row.text("gss-code")
        if not gss and not current:
            continue
        if not gss:
            row.problem("gss-code", "", "is empty for a current authority")
        fields = {
            "gss_code": gss,
            "code": row.required("local-authority-code"),
            "name": row.required("official-name"),
            "short_name": row.required("nice-name"),
            "type": row.required("local-authority-type"),
            "nation": row.required("nation"),
            "region": row.optional("region"),
            "county": row.optional("county-la"),
            "combined_authority": row.optional("combined-authority"),
            "lat": row.number_or_none("lat"),
            "long": row.number_or_none("long"),
            "current": current,
            "start_date": row.date_or_none("start-date"),
            "end_date": row.date_or_none("end-date"),
        }
        if len(problems) > before:
            continue
        try:
            council = Council.model_validate(fields)
        except ValueError as error:
            for line in _validation_lines(error):
                row.problem(*line)
            continue
        if gss in first_row_at:
            row.problem("gss-code", gss, f"repeats the code of row {first_row_at[gss]}")
            continue
        first_row_at[gss] = number
        councils.append(council)
    if problems:
        raise RegisterError(problems)
    return councils


_FIELD_COLUMNS = {
    "gss_code": "gss-code", "code": "local-authority-code", "name": "official-name",
    "short_name": "nice-name", "type": "local-authority-type", "nation": "nation",
    "region": "region", "county": "county-la", "combined_authority": "combined-authority",
    "lat": "lat", "long": "long", "current": "current-authority", "start_date": "start-date",
    "end_date": "end-date",
}


def _validation_lines(error: ValueError) -> list[tuple[str | None, str, str]]:
    """(column, value, message) for each complaint of a pydantic ValidationError."""
    errors = getattr(error, "errors", None)
    if errors is None:
        return [(None, "", str(error))]
    lines: list[tuple[str | None, str, str]] = []
    for item in errors():
        location = item.get("loc", ())
        field = str(location[0]) if location else ""
        column = _FIELD_COLUMNS.get(field)
        value = item.get("input")
        shown = value if isinstance(value, str) and column else ""
        lines.append((column, shown, str(item.get("msg", "is invalid"))))
    return lines


def english_councils(councils: Iterable[Council]) -> list[Council]:
    """The current councils of England (317 in the register), in the given order."""
    return [c for c in councils if c.is_english_council]


def register_digest(councils: Mapping[str, Council]) -> str:
    """SHA-256 of the councils the rules saw (sorted by GSS code, as JSON): recorded with a
    selection, so an auditor re-running it can tell whether the register has changed since."""
    rows = [councils[gss].model_dump(mode="json") for gss in sorted(councils)]
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def by_gss_code(councils: Iterable[Council]) -> dict[str, Council]:
    return {c.gss_code: c for c in councils}


# --- built in -------------------------------------------------------------------------------


def _built_in(gss: str, code: str, name: str, short_name: str, type_: str, region: str, *,
              county: str | None, combined_authority: str | None, lat: float, long: float,
              start_date: str | None) -> Council:
    return Council(gss_code=gss, code=code, name=name, short_name=short_name, type=type_,
                   nation="England", region=region, county=county,
                   combined_authority=combined_authority, lat=lat, long=long, current=True,
                   start_date=date.fromisoformat(start_date) if start_date else None)


_BUILT_IN = (
    _built_in("E09000008", "CRY", "London Borough of Croydon", "Croydon", "LBO", "London",
              county=None, combined_authority="GLA", lat=51.3553203225, long=-0.0871674481,
              start_date=None),
    _built_in("E09000033", "WSM", "City of Westminster", "Westminster", "LBO", "London",
              county=None, combined_authority="GLA", lat=51.5134418835, long=-0.1604557185,
              start_date=None),
    _built_in("E08000025", "BIR", "Birmingham City Council", "Birmingham", "MD", "West Midlands",
              county=None, combined_authority="WMCA", lat=52.4885472688, long=-1.874802373,
              start_date="1996-07-01"),
    _built_in("E06000001", "HPL", "Hartlepool Borough Council", "Hartlepool", "UA",
              "North East", county=None, combined_authority="TVCA", lat=54.6690134156,
              long=-1.2556506583, start_date="2005-06-18"),
    _built_in("E06000047", "DUR", "Durham County Council", "County Durham", "UA", "North East",
              county=None, combined_authority="NECA", lat=54.6954582477, long=-1.839912728,
              start_date="2009-04-01"),
    _built_in("E06000057", "NBL", "Northumberland County Council", "Northumberland", "UA",
              "North East", county=None, combined_authority="NTCA", lat=55.2415115053,
              long=-2.0663445776, start_date="2009-04-01"),
    _built_in("E07000223", "ADU", "Adur District Council", "Adur", "NMD", "South East",
              county="WSX", combined_authority=None, lat=50.8444412718,
              long=-0.29853079790000003, start_date=None),
    _built_in("E10000014", "HAM", "Hampshire County Council", "Hampshire", "CTY", "South East",
              county=None, combined_authority=None, lat=50.9807081893, long=-1.0748168163,
              start_date=None),
    _built_in("E07000084", "BAN", "Basingstoke and Deane Borough Council",
              "Basingstoke and Deane", "NMD", "South East", county="HAM",
              combined_authority=None, lat=51.2734589837, long=-1.2009435843, start_date=None),
    _built_in("E08000003", "MAN", "Manchester City Council", "Manchester", "MD", "North West",
              county=None, combined_authority="GMCA", lat=53.4514843991, long=-2.2325237603,
              start_date="1974-04-01"),
    _built_in("E08000035", "LDS", "Leeds City Council", "Leeds", "MD",
              "Yorkshire and The Humber", county=None, combined_authority="WYCA",
              lat=53.8257463987, long=-1.506016367, start_date="2005-06-08"),
    _built_in("E06000023", "BST", "Bristol City Council", "City of Bristol", "UA", "South West",
              county=None, combined_authority="WECA", lat=51.4527445331, long=-2.7708387056,
              start_date="2005-06-18"),
    _built_in("E06000052", "CON", "Cornwall Council", "Cornwall", "UA", "South West",
              county=None, combined_authority=None, lat=50.4056210886,
              long=-4.8272121848000005, start_date="2009-04-01"),
    _built_in("E10000020", "NFK", "Norfolk County Council", "Norfolk", "CTY", "East of England",
              county=None, combined_authority=None, lat=52.7573987425, long=0.9445418333000001,
              start_date=None),
)

BUILT_IN_COUNCILS: Mapping[str, Council] = MappingProxyType({c.gss_code: c for c in _BUILT_IN})
"""Fourteen real English councils by GSS code, values as in the register, for demos and tests
without the register: enough for a corporate peer challenge of any of them (with
`domain.peers.demo_pool`)."""
