"""The council model, the register parser, distances and the built-in councils."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from domain.councils import (
    BUILT_IN_COUNCILS,
    REGISTER_COLUMNS,
    Council,
    RegisterError,
    by_gss_code,
    distance_km,
    english_councils,
    parse_register,
)

HEADER = [*REGISTER_COLUMNS, "pop-2020"]


def row(**cells: str) -> dict[str, str]:
    """A register row with every column, empty unless given (`county_la=` for `county-la`)."""
    base = dict.fromkeys(HEADER, "")
    base.update({"current-authority": "True", "nation": "England"})
    for key, value in cells.items():
        base[key.replace("_", "-")] = value
    return base


ADUR = row(local_authority_code="ADU", official_name="Adur District Council", nice_name="Adur",
           gss_code="E07000223", region="South East", local_authority_type="NMD",
           county_la="WSX", lat="50.8444412718", long="-0.29853079790000003")
HAMPSHIRE = row(local_authority_code="HAM", official_name="Hampshire County Council",
                nice_name="Hampshire", gss_code="E10000014", region="South East",
                local_authority_type="CTY", lat="50.9807081893", long="-1.0748168163")
COMBINED = row(local_authority_code="GMCA", official_name="Greater Manchester Combined Authority",
               nice_name="Greater Manchester", gss_code="E47000001", region="North West",
               local_authority_type="COMB", lat="53.48", long="-2.24")
FORMER_NI = row(local_authority_code="NIR-A", official_name="Derry City Council",
                nice_name="Derry", nation="Northern Ireland", region="Northern Ireland",
                local_authority_type="NID", current_authority="False")
FORMER_DISTRICT = row(local_authority_code="AYL", official_name="Aylesbury Vale District Council",
                      nice_name="Aylesbury Vale", gss_code="E07000004", region="South East",
                      local_authority_type="NMD", county_la="BKM", current_authority="False",
                      end_date="2020-03-31")


def test_a_row_becomes_a_council() -> None:
    [adur] = parse_register([ADUR])
    assert adur == Council(gss_code="E07000223", code="ADU", name="Adur District Council",
                           short_name="Adur", type="NMD", nation="England", region="South East",
                           county="WSX", combined_authority=None, lat=50.8444412718,
                           long=-0.29853079790000003, current=True)
    assert adur.county_area == "WSX"
    assert adur.is_english_council


def test_a_county_council_is_in_its_own_county() -> None:
    hampshire, adur = parse_register([HAMPSHIRE, ADUR])
    assert hampshire.county is None
    assert hampshire.county_area == "HAM"
    basingstoke = BUILT_IN_COUNCILS["E07000084"]
    assert basingstoke.county_area == hampshire.county_area
    assert adur.county_area != hampshire.county_area
    assert BUILT_IN_COUNCILS["E09000008"].county_area is None


def test_former_and_combined_authorities_are_read_but_not_english_councils() -> None:
    councils = parse_register([ADUR, COMBINED, FORMER_DISTRICT, FORMER_NI])
    assert [c.gss_code for c in councils] == ["E07000223", "E47000001", "E07000004"]
    former = councils[2]
    assert not former.current and former.lat is None and former.end_date is not None
    assert [c.gss_code for c in english_councils(councils)] == ["E07000223"]
    assert set(by_gss_code(councils)) == {"E07000223", "E47000001", "E07000004"}


def test_a_missing_column_is_named() -> None:
    incomplete = {k: v for k, v in ADUR.items() if k not in ("lat", "county-la")}
    with pytest.raises(RegisterError) as caught:
        parse_register([incomplete])
    assert {(p.column, p.row) for p in caught.value.problems} == {("lat", 0), ("county-la", 0)}
    assert "column is missing" in str(caught.value)


def test_every_bad_cell_is_reported_with_its_row_and_column() -> None:
    rows = [
        ADUR,
        {**HAMPSHIRE, "lat": "north", "start-date": "01/04/1974"},
        {**ADUR, "gss-code": "E07000223"},            # duplicate
        {**ADUR, "gss-code": "", "local-authority-code": "XXX"},  # current without code
        {**ADUR, "gss-code": "E7", "local-authority-code": "ZZZ"},  # malformed code
        {**ADUR, "gss-code": "E07000999", "current-authority": "yes"},
        {**ADUR, "gss-code": "E07000998", "long": ""},  # lat without long
        {**ADUR, "gss-code": "E07000997", "lat": "123.0"},
    ]
    with pytest.raises(RegisterError) as caught:
        parse_register(rows)
    found = {(p.row, p.column) for p in caught.value.problems}
    assert found == {
        (2, "lat"), (2, "start-date"),
        (3, "gss-code"),
        (4, "gss-code"),
        (5, "gss-code"),
        (6, "current-authority"),
        (7, None),
        (8, "lat"),
    }
    message = str(caught.value)
    assert "the council register has 8 problems" in message
    assert "row 2, column 'lat': is not a number (value 'north')" in message
    assert "row 3, column 'gss-code': repeats the code of row 1" in message
    assert "row 4, column 'gss-code': is empty for a current authority" in message
    assert "lat and long go together" in message


def test_distance_is_the_great_circle_distance() -> None:
    croydon = BUILT_IN_COUNCILS["E09000008"]
    westminster = BUILT_IN_COUNCILS["E09000033"]
    hartlepool = BUILT_IN_COUNCILS["E06000001"]
    assert distance_km(croydon, croydon) == 0
    assert distance_km(croydon, westminster) == pytest.approx(18.3, abs=0.1)
    assert distance_km(croydon, hartlepool) == distance_km(hartlepool, croydon)
    # One degree of latitude along a meridian is about 111.2 km.
    north = croydon.model_copy(update={"lat": 52.3553203225, "gss_code": "E09000099"})
    assert distance_km(croydon, north) == pytest.approx(2 * math.pi * 6371.0088 / 360, rel=1e-9)
    nowhere = croydon.model_copy(update={"lat": None, "long": None})
    with pytest.raises(ValueError, match="has no position"):
        distance_km(croydon, nowhere)


def test_built_in_councils_are_real_english_councils() -> None:
    assert len(BUILT_IN_COUNCILS) >= 10
    for gss, council in BUILT_IN_COUNCILS.items():
        assert gss == council.gss_code
        assert council.is_english_council and council.has_position
    for gss in ("E09000008", "E08000025", "E06000001", "E06000047", "E07000223", "E10000014"):
        assert gss in BUILT_IN_COUNCILS
    with pytest.raises(TypeError):
        BUILT_IN_COUNCILS["E00000000"] = BUILT_IN_COUNCILS["E09000008"]  # type: ignore[index]


def test_built_in_councils_match_the_register(register_csv: Path) -> None:
    with register_csv.open(newline="", encoding="utf-8") as handle:
        register = by_gss_code(parse_register(csv.DictReader(handle)))
    for gss, council in BUILT_IN_COUNCILS.items():
        assert register[gss] == council, gss
    assert len(english_councils(register.values())) == 317
