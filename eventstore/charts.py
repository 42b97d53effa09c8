"""Charts for the annual report, as plain SVG text (no plotting library).

`stage_chart` draws cases by stage as horizontal bars; `publication_histogram` draws the days
from visit to publication in bins, with the 3-month deadline (91 days) marked; `annual_chart`
puts both in one SVG document. The output is deterministic (same input, same bytes), UTF-8,
and every text is escaped, so it can be written straight to a `.svg` file; `write_chart` writes
it so that no symlink is followed and nothing is overwritten unless asked.
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
          weight: str = "normal", fill: str = AXIS) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(text)}</text>')


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


def histogram_bins(days: Sequence[int], bin_width: int) -> list[tuple[int, int, int]]:
    """(first day, last day, how many) for bins of `bin_width` days from 0 to the largest value
    (negative values, which the rules never allow, go in the first bin)."""
    if bin_width < 1:
        raise ValueError("bin_width must be at least 1 day")
    if not days:
        return []
    bins = max(days) // bin_width + 1
    counts = [0] * bins
    for value in days:
        counts[max(value, 0) // bin_width] += 1
    return [(i * bin_width, (i + 1) * bin_width - 1, n) for i, n in enumerate(counts)]


def _histogram_panel(days: Sequence[int], top: float, title: str, bin_width: int,
                     deadline_days: int | None) -> tuple[list[str], float]:
    left, plot_height, axis_gap = 60.0, 200.0, 40.0
    plot_width = WIDTH - left - 30
    body = [_text(20, top + 18, title, size=15, weight="bold")]
    bins = histogram_bins(days, bin_width)
    base = top + 56 + plot_height
    if not bins:
        body.append(_text(left, top + 60, "no reports published in the period"))
        return body, 80.0
    most = max(n for _, _, n in bins)
    last_day = bins[-1][1] + 1
    if deadline_days is not None:
        last_day = max(last_day, deadline_days + bin_width)
    scale = plot_width / last_day
    for first, last, n in bins:
        height = plot_height * n / most
        late = deadline_days is not None and first > deadline_days
        body.append(_rect(left + first * scale + 1, base - height, bin_width * scale - 2, height,
                          LATE if late else BAR, f"{first}–{last} days: {n}"))
        if n:
            body.append(_text(left + (first + bin_width / 2) * scale, base - height - 4, str(n),
                              size=11, anchor="middle"))
    body.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_width}" y2="{base}" '
                f'stroke="{AXIS}"/>')
    step = bin_width * max(1, round(len(bins) / 10))
    for day in range(0, last_day + 1, step):
        body.append(_text(left + day * scale, base + 16, str(day), size=11, anchor="middle"))
    body.append(_text(left + plot_width / 2, base + 32, "days from visit to publication",
                      anchor="middle"))
    if deadline_days is not None:
        x = left + deadline_days * scale
        body.append(f'<line x1="{x:.1f}" y1="{top + 30}" x2="{x:.1f}" y2="{base}" '
                    f'stroke="{LATE}" stroke-dasharray="5,4"/>')
        body.append(_text(x + 4, top + 38, f"deadline ({deadline_days} days)", size=11,
                          fill=LATE))
    return body, 56 + plot_height + axis_gap + 10


def stage_chart(counts: Mapping[str, int], title: str = "Cases by stage") -> str:
    """A horizontal bar chart of `counts` (stage → cases), in the mapping's order."""
    body, height = _stage_panel(counts, 0, title)
    return _document(WIDTH, int(height) + 10, title, body)


def publication_histogram(days: Sequence[int], *, bin_width: int = 14,
                          deadline_days: int | None = 91,
                          title: str = "Days from visit to publication") -> str:
    """A histogram of `days` in bins of `bin_width` days; bins wholly after `deadline_days`
    are drawn in the lapse colour and the deadline is a dashed line (None: no line)."""
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
