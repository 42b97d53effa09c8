"""Charts for the annual report, as plain SVG text (no plotting library).

`stage_chart` draws cases by stage as horizontal bars; `publication_histogram` draws the days
from the visit's last day to publication in bins, with a count axis, the 3-month deadline
(91 days) as a dashed line and a legend for the colours; `annual_chart` puts both in one SVG
document. The bins are closed on the right and 91 is an edge, so day 91 is on time, day 92
late, and no bar mixes the two. The colours compare the days with the deadline, as the
report's "within 3 months" figure does; they are not the engine's `DeadlineMissed` verdict,
which counts from when the visit was recorded, in workflow time.

The output is deterministic (same input, same bytes), UTF-8, and every text is escaped, so it
can be written straight to a `.svg` file; `write_chart` writes it so that no symlink is
followed and nothing is overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

WIDTH = 720
FONT = "font-family=\"DejaVu Sans, Arial, sans-serif\""
BAR = "#1f5f8b"
LATE = "#b5452b"
AXIS = "#444444"


def _text(x: float, y: float, text: str, *, size: int = 12, anchor: str = "start",
          weight: str = "normal", fill: str = AXIS, upright: bool = False) -> str:
    """A text at (x, y); `upright` turns it to read bottom to top, as a vertical axis's title."""
    turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if upright else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}"{turn}>{escape(text)}</text>')


def _rect(x: float, y: float, width: float, height: float, fill: str, title: str) -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" '
            f'height="{max(height, 0):.1f}" fill="{fill}"><title>{escape(title)}</title></rect>')


def _document(width: int, height: int, title: str, body: list[str]) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)} {FONT}>',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        *body, "</svg>", ""])


def _stage_panel(counts: Mapping[str, int], top: float, title: str) -> tuple[list[str], float]:
    """The bars of cases by stage, drawn from `top`; (elements, height used)."""
    label_width, left, row = 190.0, 20.0, 22.0
    plot_width = WIDTH - left - label_width - 60
    most = max([*counts.values(), 1])
    body = [_text(left, top + 18, title, size=15, weight="bold")]
    y = top + 34
    for stage, count in counts.items():
        label = stage.replace("_", " ")
        width = plot_width * count / most
        body.append(_text(left + label_width - 8, y + 15, label, anchor="end"))
        body.append(_rect(left + label_width, y + 3, width, row - 6, BAR, f"{label}: {count}"))
        body.append(_text(left + label_width + width + 6, y + 15, str(count)))
        y += row
    if not counts:
        body.append(_text(left, y + 15, "no cases"))
        y += row
    return body, y - top + 10


def histogram_bins(days: Sequence[int], bin_width: int, *,
                   deadline_days: int | None = None) -> list[tuple[int, int, int]]:
    """(first day, last day, how many) for bins of `bin_width` days, up to the largest value.

    The bins are closed on the right: each holds the days d with a < d <= b for edges a, b
    that are `deadline_days` plus a multiple of `bin_width`, so the deadline is always an edge
    and no bin holds both a day on time (d <= deadline) and a late one (d > deadline). With
    width 14 and the 91-day deadline: 0–7, 8–21, …, 78–91 | 92–105, …; day 91 is on time and
    day 92 late. Without a deadline the edges are -1 plus multiples of the width (0–13,
    14–27, …). The first bin starts at day 0 whatever its lower edge, and negative values,
    which the rules never allow, go in it."""
    if bin_width < 1:
        raise ValueError("bin_width must be at least 1 day")
    if not days:
        return []
    anchor = -1 if deadline_days is None else deadline_days
    first = _bin_index(0, anchor, bin_width)
    counts = [0] * (_bin_index(max(max(days), 0), anchor, bin_width) - first + 1)
    for value in days:
        counts[_bin_index(max(value, 0), anchor, bin_width) - first] += 1
    return [(max(anchor + (first + i - 1) * bin_width + 1, 0), anchor + (first + i) * bin_width,
             n) for i, n in enumerate(counts)]


def _bin_index(day: int, anchor: int, bin_width: int) -> int:
    """k such that anchor + (k-1)·width < day <= anchor + k·width (a ceiling division)."""
    return -((anchor - day) // bin_width)


def _nice_step(most: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … that reaches `most` in at most 5 steps, so the
    count axis has at most 6 ticks, each a round number, whatever the counts."""
    step = 1
    while step * 5 < most:
        step = step * 5 // 2 if str(step).startswith("2") else step * 2
    return step


def _line(x1: float, y1: float, x2: float, y2: float, *, stroke: str = AXIS,
          dashed: bool = False) -> str:
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}"{dash}/>')


def _swatch(x: float, y: float, fill: str) -> str:
    """A legend's colour sample; it has no <title>, so it is never taken for a bar."""
    return f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{fill}"/>'


def _legend(x: float, y: float, deadline_days: int | None) -> list[str]:
    """What the colours and the dashed line mean, one item a row from baseline `y`: a reader
    should not have to guess that red means late."""
    if deadline_days is None:
        return [_swatch(x, y, BAR), _text(x + 18, y, "reports published")]
    within = (f"3 months ({deadline_days} days)" if deadline_days == 91
              else f"{deadline_days} days")
    return [
        _swatch(x, y, BAR), _text(x + 18, y, f"published within {within} of the visit"),
        _swatch(x, y + 18, LATE),
        _text(x + 18, y + 18, f"published later than {deadline_days} days after the visit"),
        _line(x - 2, y + 32, x + 14, y + 32, stroke=LATE, dashed=True),
        _text(x + 18, y + 36, f"deadline: {deadline_days} days"),
    ]


def _histogram_panel(days: Sequence[int], top: float, title: str, bin_width: int,
                     deadline_days: int | None) -> tuple[list[str], float]:
    """The histogram drawn from `top`; (elements, height used). Axes and legend are drawn even
    with no reports, so an empty period looks like a chart with nothing in it, not a fault."""
    left, right, plot_height = 70.0, WIDTH - 30.0, 200.0
    plot_top = top + 56
    base = plot_top + plot_height
    bins = histogram_bins(days, bin_width, deadline_days=deadline_days)
    anchor = -1 if deadline_days is None else deadline_days
    low = anchor + (_bin_index(0, anchor, bin_width) - 1) * bin_width  # the first bin's edge
    high = bins[-1][1] if bins else low + bin_width
    if deadline_days is not None:
        high = max(high, deadline_days + bin_width)
    scale = (right - left) / (high - low)

    def x(day: float) -> float:
        return left + (day - low) * scale

    most = max((n for _, _, n in bins), default=0)
    step = _nice_step(most)
    ceiling = max(-(-most // step), 1) * step  # the top tick: bars are read off the axis
    body = [_text(20, top + 18, title, size=15, weight="bold")]
    for count in range(0, ceiling + 1, step):
        y = base - plot_height * count / ceiling
        body.append(_line(left - 5, y, left, y))
        body.append(_text(left - 8, y + 4, str(count), size=11, anchor="end"))
    body.append(_line(left, plot_top, left, base))
    middle = plot_top + plot_height / 2
    body.append(_text(24, middle, "reports", anchor="middle", upright=True))
    for first, last, n in bins:
        lower = last - bin_width
        late = deadline_days is not None and lower >= deadline_days
        height = plot_height * n / ceiling
        body.append(_rect(x(lower) + 1, base - height, bin_width * scale - 2, height,
                          LATE if late else BAR, f"{first}–{last} days: {n}"))
        if n:
            body.append(_text(x(lower + bin_width / 2), base - height - 4, str(n), size=11,
                              anchor="middle"))
    if not bins:
        body.append(_text((left + right) / 2, middle, "no reports published in the period",
                          anchor="middle"))
    body.append(_line(left, base, right, base))
    every = bin_width * max(1, round((high - low) / bin_width / 10))
    edge = anchor + -((anchor - max(low, 0)) // every) * every  # the first labelled edge >= 0
    while edge <= high:
        body.append(_line(x(edge), base, x(edge), base + 5))
        body.append(_text(x(edge), base + 18, str(edge), size=11, anchor="middle"))
        edge += every
    body.append(_text((left + right) / 2, base + 36,
                      "days from the visit's last day to publication", anchor="middle"))
    if deadline_days is not None and deadline_days >= low:  # a negative one is off the axis
        body.append(_line(x(deadline_days), plot_top - 6, x(deadline_days), base, stroke=LATE,
                          dashed=True))
    body.extend(_legend(left, base + 60, deadline_days))
    return body, base - top + (68 if deadline_days is None else 104)


def stage_chart(counts: Mapping[str, int], title: str = "Cases by stage") -> str:
    """A horizontal bar chart of `counts` (stage → cases), in the mapping's order."""
    body, height = _stage_panel(counts, 0, title)
    return _document(WIDTH, int(height) + 10, title, body)


def publication_histogram(days: Sequence[int], *, bin_width: int = 14,
                          deadline_days: int | None = 91,
                          title: str = "Days from visit to publication") -> str:
    """A histogram of `days` in bins of `bin_width` days, with a count axis and a legend.

    The deadline is a bin edge (see `histogram_bins`), so each bar is wholly on time (blue:
    days <= `deadline_days`) or wholly late (red: days > `deadline_days`), and the dashed
    line at the deadline never cuts a bar. None: one colour, no line."""
    body, height = _histogram_panel(days, 0, title, bin_width, deadline_days)
    return _document(WIDTH, int(height) + 10, title, body)


def annual_chart(counts: Mapping[str, int], days: Sequence[int], *, title: str,
                 bin_width: int = 14, deadline_days: int | None = 91) -> str:
    """One SVG with a heading, cases by stage, then the days from visit to publication."""
    body = [_text(20, 28, title, size=18, weight="bold")]
    stages, height = _stage_panel(counts, 44, "Cases by stage")
    hist, more = _histogram_panel(days, 44 + height, "Days from visit to publication",
                                  bin_width, deadline_days)
    return _document(WIDTH, int(44 + height + more) + 10, title, [*body, *stages, *hist])


class ChartRefused(Exception):
    """Why a chart was not written, in one sentence that says what to do instead."""


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def write_chart(path: Path, svg: str, *, replace: bool = False) -> None:
    """Write `svg` to `path` as a new file readable by its owner only (0600).

    An output path is often one someone else could prepare: a symlink there would make us
    overwrite whatever it points at, so a symlink is refused, even with `replace`. An existing
    file is refused unless `replace`; then the chart goes to a new file beside it that is
    renamed over it, which replaces the name and never writes through it."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        found = None
    except OSError as error:
        raise ChartRefused(f"{path}: {error.strerror}") from None
    if found is not None and stat.S_ISLNK(found.st_mode):
        raise ChartRefused(f"{path} is a symbolic link: a chart is never written through one, "
                           "even with --force; give the path of a new file")
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise ChartRefused(f"{path} exists and is not a file; give the path of a new file")
    if found is not None and not replace:
        raise ChartRefused(f"{path} exists: add --force to replace it, or give a new path")
    data = svg.encode("utf-8")
    if found is None:
        _write_new(path, data)
        return
    spare = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_new(spare, data)
    try:
        os.replace(spare, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            spare.unlink()
        raise ChartRefused(f"{path}: {error.strerror}; the chart was not written") from None


def _write_new(path: Path, data: bytes) -> None:
    try:
        descriptor = os.open(path, _NEW_FILE, 0o600)
    except FileExistsError:  # made (a symlink, say) between our look and our write
        raise ChartRefused(f"{path} appeared while the chart was being written; nothing "
                           "was written through it") from None
    except OSError as error:
        raise ChartRefused(f"{path}: {error.strerror}; the chart was not written") from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
