"""The annual report's chart as a reader sees it: a count axis, a legend for the colours, and
bins that never mix reports published on time with late ones (the deadline is a bin edge)."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.charts import (
    BAR,
    LATE,
    annual_chart,
    histogram_bins,
    publication_histogram,
)

NS = "{http://www.w3.org/2000/svg}"
DEADLINE = 91
AROUND_THE_DEADLINE = [85, 91, 92, 100]


@dataclass(frozen=True)
class Bar:
    first: int
    last: int
    count: int
    fill: str
    x: float
    width: float
    top: float
    height: float


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def bars(root: ET.Element) -> list[Bar]:
    """The histogram's bars: the rects whose tooltip reads "first–last days: count"."""
    found = []
    for rect in root.iter(f"{NS}rect"):
        match = re.fullmatch(r"(\d+)–(\d+) days: (\d+)", rect.findtext(f"{NS}title") or "")
        if match:
            found.append(Bar(int(match[1]), int(match[2]), int(match[3]), rect.get("fill", ""),
                             float(rect.get("x", "0")), float(rect.get("width", "0")),
                             float(rect.get("y", "0")), float(rect.get("height", "0"))))
    return found


def texts(root: ET.Element) -> list[Text]:
    return [Text(float(t.get("x", "0")), float(t.get("y", "0")), t.text or "")
            for t in root.iter(f"{NS}text")]


def lines(root: ET.Element) -> list[dict[str, str]]:
    return [dict(line.attrib) for line in root.iter(f"{NS}line")]


def count_axis_x(root: ET.Element) -> float:
    """The vertical axis: the solid vertical line furthest left."""
    verticals = [float(a["x1"]) for a in lines(root)
                 if a["x1"] == a["x2"] and "stroke-dasharray" not in a
                 and abs(float(a["y1"]) - float(a["y2"])) > 100]
    assert verticals, "no vertical axis"
    return min(verticals)


def tick_labels(root: ET.Element) -> list[Text]:
    """The numbers left of the count axis, bottom to top."""
    axis = count_axis_x(root)
    found = [t for t in texts(root) if t.x < axis and t.text.isdigit()]
    return sorted(found, key=lambda t: -t.y)


def deadline_x(root: ET.Element) -> float:
    dashed = [a for a in lines(root) if "stroke-dasharray" in a and a["x1"] == a["x2"]]
    assert len(dashed) == 1, "one dashed deadline line in the plot"
    return float(dashed[0]["x1"])


# --- the legend ----------------------------------------------------------------------------

@pytest.mark.parametrize("draw", [
    lambda: publication_histogram(AROUND_THE_DEADLINE),
    lambda: annual_chart({"visited": 2}, AROUND_THE_DEADLINE, title="Peer challenges 2025"),
])
def test_the_legend_says_what_blue_red_and_the_dashed_line_mean(draw: Callable[[], str]
                                                                 ) -> None:
    root = parse(draw())
    by_text = {t.text: t for t in texts(root)}
    on_time = by_text["published within 3 months (91 days) of the visit"]
    late = by_text["published later than 91 days after the visit"]
    deadline = by_text["deadline: 91 days"]
    swatches = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is None
                and r.get("width") == "12"]

    def swatch_beside(text: Text) -> str:
        """The colour sample left of `text` and level with it (centres within 6 px)."""
        near = [r.get("fill") for r in swatches if float(r.get("x", "0")) < text.x
                and abs(float(r.get("y", "0")) + 6 - (text.y - 4)) < 6]
        assert len(near) == 1, f"one colour sample beside {text.text!r}"
        return near[0] or ""

    assert swatch_beside(on_time) == BAR
    assert swatch_beside(late) == LATE
    dashes = [a for a in lines(root) if "stroke-dasharray" in a and a["y1"] == a["y2"]
              and float(a["x2"]) < deadline.x and abs(float(a["y1"]) - (deadline.y - 4)) < 6]
    assert len(dashes) == 1 and dashes[0]["stroke"] == LATE


# --- the axes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("most", "ticks"), [
    (1, [0, 1]),
    (3, [0, 1, 2, 3]),
    (5, [0, 1, 2, 3, 4, 5]),
    (7, [0, 2, 4, 6, 8]),
    (12, [0, 5, 10, 15]),
    (48, [0, 10, 20, 30, 40, 50]),
    (120, [0, 50, 100, 150]),
])
def test_the_count_axis_has_round_ticks_the_bars_can_be_read_off(most: int,
                                                                 ticks: list[int]) -> None:
    days = [40] * most + [100]
    root = parse(publication_histogram(days))
    labels = tick_labels(root)
    assert [int(t.text) for t in labels] == ticks
    axis = count_axis_x(root)
    marks = {round(float(a["y1"]), 1) for a in lines(root)
             if a["y1"] == a["y2"] and float(a["x2"]) == axis and float(a["x1"]) < axis}
    assert len(marks) == len(ticks), "a tick mark for every label"
    zero, top = labels[0].y, labels[-1].y
    per_report = (zero - top) / ticks[-1]
    for bar in bars(root):
        assert bar.top + bar.height == pytest.approx(zero - 4, abs=0.15)
        assert bar.height == pytest.approx(bar.count * per_report, abs=0.15)


def test_the_axes_have_titles() -> None:
    root = parse(publication_histogram(AROUND_THE_DEADLINE))
    words = [t.text for t in texts(root)]
    assert "reports" in words
    assert "days from the visit's last day to publication" in words
    upright = [t for t in root.iter(f"{NS}text") if t.text == "reports"]
    assert "rotate(-90" in (upright[0].get("transform") or "")


def test_the_day_axis_labels_the_deadline_where_the_bars_meet() -> None:
    root = parse(publication_histogram(AROUND_THE_DEADLINE))
    line = deadline_x(root)
    assert any(t.text == "91" and t.x == pytest.approx(line) for t in texts(root))


def test_no_reports_still_draws_axes_legend_and_says_so() -> None:
    root = parse(publication_histogram([]))
    words = [t.text for t in texts(root)]
    assert "no reports published in the period" in words
    assert not bars(root)
    assert [t.text for t in tick_labels(root)] == ["0", "1"]
    assert "91" in words and "reports" in words
    assert "published later than 91 days after the visit" in words
    horizontal = [a for a in lines(root) if a["y1"] == a["y2"] and
                  float(a["x2"]) - float(a["x1"]) > 300]
    assert horizontal, "an x-axis"
    deadline_x(root)


# --- bins around the deadline --------------------------------------------------------------

def test_the_deadline_is_a_bin_edge_and_no_bin_mixes_on_time_with_late() -> None:
    bins = histogram_bins(AROUND_THE_DEADLINE, 14, deadline_days=DEADLINE)
    assert any(last == DEADLINE for _, last, _ in bins)
    assert any(first == DEADLINE + 1 for first, _, _ in bins)
    for first, last, n in bins:
        held = [d for d in AROUND_THE_DEADLINE if first <= d <= last]
        assert len(held) == n
        assert all(d <= DEADLINE for d in held) or all(d > DEADLINE for d in held)
    by_range = {(first, last): n for first, last, n in bins}
    assert by_range[(78, 91)] == 2 and by_range[(92, 105)] == 2  # 85, 91 | 92, 100


def test_without_a_deadline_the_bins_start_at_day_zero() -> None:
    assert histogram_bins([0, 13, 14, 30], 14)[:3] == [(0, 13, 2), (14, 27, 1), (28, 41, 1)]


@given(days=st.lists(st.integers(min_value=-3, max_value=400), max_size=40),
       width=st.integers(min_value=1, max_value=60),
       deadline=st.integers(min_value=0, max_value=200))
def test_bins_cover_every_day_once_and_each_is_one_side_of_the_deadline(
        days: list[int], width: int, deadline: int) -> None:
    bins = histogram_bins(days, width, deadline_days=deadline)
    assert sum(n for _, _, n in bins) == len(days)
    for (_, last, _), (first, _, _) in itertools.pairwise(bins):
        assert first == last + 1
    for first, last, _ in bins:
        assert last <= deadline or first > deadline
        assert last - first + 1 <= width
    if bins:
        assert bins[0][0] == 0 and bins[-1][1] >= max(days)
        edges = {last for _, last, _ in bins}
        if bins[-1][1] >= deadline:
            assert deadline in edges


def test_red_bars_only_for_late_bins_and_no_bar_crosses_the_deadline_line() -> None:
    days = [3, 20, 40, 41, 60, *AROUND_THE_DEADLINE, 130, 200]
    root = parse(publication_histogram(days))
    drawn = bars(root)
    assert {b.fill for b in drawn} == {BAR, LATE}
    assert sum(b.count for b in drawn) == len(days)
    line = deadline_x(root)
    for bar in drawn:
        held = [d for d in days if bar.first <= d <= bar.last]
        if bar.fill == LATE:
            assert bar.first > DEADLINE and all(d > DEADLINE for d in held)
            assert bar.x >= line
        else:
            assert bar.fill == BAR
            assert bar.last <= DEADLINE and all(d <= DEADLINE for d in held)
            assert bar.x + bar.width <= line


@pytest.mark.parametrize(("day", "fill"), [(91, BAR), (92, LATE)])
def test_day_91_is_on_time_and_day_92_late(day: int, fill: str) -> None:
    counted = [b for b in bars(parse(publication_histogram([day]))) if b.count]
    assert [(b.count, b.fill) for b in counted] == [(1, fill)]


def test_without_a_deadline_there_is_one_colour_and_no_deadline_line() -> None:
    root = parse(publication_histogram(AROUND_THE_DEADLINE, deadline_days=None))
    assert {b.fill for b in bars(root)} == {BAR}
    assert not [a for a in lines(root) if "stroke-dasharray" in a]
    assert "reports published" in [t.text for t in texts(root)]


# --- still deterministic, escaped, inert ---------------------------------------------------

def test_the_chart_is_deterministic_escaped_and_has_no_script() -> None:
    title = 'Peer challenges <2025> & "after"'
    svg = annual_chart({"visited": 5, "<b>": 1}, AROUND_THE_DEADLINE, title=title)
    assert svg == annual_chart({"visited": 5, "<b>": 1}, AROUND_THE_DEADLINE, title=title)
    root = parse(svg)
    assert root.findtext(f"{NS}title") == title
    assert "<script" not in svg.lower()
    assert not [name for element in root.iter() for name in element.attrib
                if name.lower().startswith("on")]
