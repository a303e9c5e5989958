"""Inline SVG charts for the HTML report: RPO over time, and a Gantt chart of a drill's steps.

Plain strings, no JavaScript; every label is escaped. Sizes are in viewBox units and the SVG
scales to its container, so the same chart fits a screen and an A4 page.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from html import escape

from dr.config import format_duration
from dr.report.model import DrillReport, ResourceReport, short

WIDTH = 900
_SECOND_STEPS = [timedelta(seconds=s) for s in (1, 2, 5, 10, 15, 30)]
_TIME_STEPS = [timedelta(minutes=m) for m in (1, 5, 10, 15, 30)] + \
    [timedelta(hours=h) for h in (1, 2, 3, 6, 12)] + [timedelta(days=d) for d in (1, 2, 7, 14, 30, 60, 91)]
_VALUE_STEPS = [s.total_seconds() for s in _TIME_STEPS] + [182 * 86400.0, 365 * 86400.0]
STATUS_COLOR = {"completed": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e",
                "interrupted": "#ef6c00", "running": "#1565c0", "aborted": "#ef6c00"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def value_step(top: float, max_ticks: int = 5) -> float:
    for step in _VALUE_STEPS:
        if top / step <= max_ticks:
            return step
    return _VALUE_STEPS[-1] * (int(top / _VALUE_STEPS[-1] / max_ticks) + 1)


def time_ticks(start: datetime, end: datetime, max_ticks: int = 7) -> list[datetime]:
    span = end - start
    step = next((s for s in _TIME_STEPS if span / s <= max_ticks), _TIME_STEPS[-1])
    epoch = datetime(1970, 1, 1, tzinfo=start.tzinfo)
    first = epoch + ((start - epoch) // step + 1) * step
    ticks = []
    while first <= end and len(ticks) < 50:
        ticks.append(first)
        first += step
    return ticks


def _time_label(t: datetime, span: timedelta) -> str:
    if span > timedelta(days=2):
        return t.strftime("%b %d")
    return t.strftime("%H:%M") if (t.hour, t.minute) != (0, 0) else t.strftime("%b %d")


def chart_start(r: ResourceReport, start: datetime, end: datetime) -> datetime:
    """Where the chart's time axis begins: the period's start, or, when the resource's first copy
    came later (a new install), shortly before it, so the data fills the chart instead of a
    sliver at its right edge after weeks of grey."""
    first = r.covered_from
    if first is None or first <= start:
        return start
    return max(start, first - (end - first) / 10)


def rpo_chart(r: ResourceReport, start: datetime, end: datetime, height: int = 190) -> str:
    """RPO over the period (worst in each interval) against the objective line."""
    left, right, top, bottom = 58, 16, 14, 26
    w, h = WIDTH - left - right, height - top - bottom
    objective = r.objective.total_seconds()
    start = chart_start(r, start, end)
    series = [(t, v) for t, v in r.series if t > start]
    r = replace(r, series=tuple(series))
    values = [v for _, v in r.series if v is not None]
    ymax = max([objective * 1.3] + [v * 1.08 for v in values])
    span = (end - start) or timedelta(seconds=1)

    def x(t: datetime) -> float:
        return left + w * ((t - start) / span)

    def y(v: float) -> float:
        return top + h * (1 - min(v, ymax) / ymax)

    title = f"RPO of {r.name} over time"
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">', f"<title>{_e(title)}</title>",
             f'<rect class="over" x="{left}" y="{top}" width="{w}" height="{_f(y(objective) - top)}"/>']
    step = value_step(ymax)
    v = 0.0
    while v <= ymax:
        parts.append(f'<line class="grid" x1="{left}" x2="{left + w}" y1="{_f(y(v))}" y2="{_f(y(v))}"/>'
                     f'<text class="ylab" x="{left - 6}" y="{_f(y(v) + 4)}">'
                     f'{_e(format_duration(timedelta(seconds=v)) if v else "0")}</text>')
        v += step
    for t in time_ticks(start, end):
        parts.append(f'<line class="tick" x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{top + h}" y2="{top + h + 4}"/>'
                     f'<text class="xlab" x="{_f(x(t))}" y="{top + h + 17}">{_e(_time_label(t, span))}</text>')
    parts += _series_paths(r, start, x, y, top + h)
    oy = _f(y(objective))
    parts.append(f'<line class="objective" x1="{left}" x2="{left + w}" y1="{oy}" y2="{oy}"/>'
                 f'<text class="objlab" x="{left + 6}" y="{_f(y(objective) - 5)}">'
                 f'objective {_e(format_duration(r.objective))}</text>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + h}"/>'
                 f'<line class="axis" x1="{left}" x2="{left + w}" y1="{top + h}" y2="{top + h}"/>')
    if not values:
        parts.append(f'<text class="empty" x="{left + w / 2}" y="{top + h / 2}">no copy in the period</text>')
    parts.append("</svg>")
    return "".join(parts)


def _series_paths(r: ResourceReport, start: datetime, x, y, base: float) -> list[str]:
    """An area and a line per run of known values; gaps (no copy yet) are shaded."""
    out, run, prev_end = [], [], start
    segments = []
    for end, v in r.series:
        if v is None:
            if run:
                segments.append(run)
                run = []
            out.append(f'<rect class="nocopy" x="{_f(x(prev_end))}" y="{_f(y(1e30))}" '
                       f'width="{_f(max(x(end) - x(prev_end), 0.5))}" height="{_f(base - y(1e30))}"/>')
        else:
            run.append((prev_end, end, v))
        prev_end = end
    if run:
        segments.append(run)
    for seg in segments:
        pts = []
        for a, b, v in seg:
            pts += [(x(a), y(v)), (x(b), y(v))]
        line = " ".join(f"{_f(px)},{_f(py)}" for px, py in pts)
        area = f"{_f(pts[0][0])},{_f(base)} {line} {_f(pts[-1][0])},{_f(base)}"
        out.append(f'<polygon class="area" points="{area}"/><polyline class="line" points="{line}"/>')
    return out


def gantt(d: DrillReport, row: int = 26) -> str:
    """One bar per step, from the drill's start; dashed lines at the RTO objective and measured RTO."""
    steps = [s for s in d.steps if s.started_at is not None]
    label_w, right, top = 230, 70, 24
    w = WIDTH - label_w - right
    span = _span(d)
    height = top + row * max(len(steps), 1) + 28

    def x(t: timedelta) -> float:
        return label_w + w * (t / span)

    title = f"Steps of drill {d.run_id}"
    parts = [f'<svg class="chart gantt" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">', f"<title>{_e(title)}</title>"]
    base = top + row * max(len(steps), 1)
    tick = next((s for s in _SECOND_STEPS + _TIME_STEPS if span / s <= 8), _TIME_STEPS[-1])
    t = timedelta(0)
    while t <= span:
        parts.append(f'<line class="grid" x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{top - 6}" y2="{base}"/>'
                     f'<text class="xlab" x="{_f(x(t))}" y="{base + 16}">'
                     f'+{_e(format_duration(t) if t else "0s")}</text>')
        t += tick
    for i, s in enumerate(steps):
        y0 = top + i * row
        a = s.started_at - d.started_at
        b = (s.finished_at or s.started_at) - d.started_at
        color = STATUS_COLOR.get(s.status, "#607d8b")
        dur = short(s.duration) if s.duration is not None else s.status
        parts.append(f'<text class="glab" x="{label_w - 8}" y="{y0 + row / 2 + 4}">{_e(s.name)} '
                     f'<tspan class="gkind">{_e(s.kind)}</tspan></text>'
                     f'<rect x="{_f(x(a))}" y="{y0 + 5}" width="{_f(max(x(b) - x(a), 2))}" '
                     f'height="{row - 10}" rx="3" fill="{color}"><title>{_e(s.name)}: {_e(s.status)}, '
                     f'{_e(dur)}</title></rect>'
                     f'<text class="gdur" x="{_f(x(b) + 5)}" y="{y0 + row / 2 + 4}">{_e(dur)}</text>')
    if not steps:
        parts.append(f'<text class="empty" x="{label_w + w / 2}" y="{top + row / 2}">no step timings recorded</text>')
    if d.rto_objective <= span:
        ox = _f(x(d.rto_objective))
        parts.append(f'<line class="objective" x1="{ox}" x2="{ox}" y1="{top - 14}" y2="{base}"/>'
                     f'<text class="objlab end" x="{ox}" y="{top - 14 + 9}" dx="-4">RTO objective '
                     f'{_e(format_duration(d.rto_objective))}</text>')
    if d.rto is not None and d.rto <= span:
        mx = _f(x(d.rto))
        parts.append(f'<line class="measured" x1="{mx}" x2="{mx}" y1="{top - 6}" y2="{base}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _span(d: DrillReport) -> timedelta:
    steps = [s for s in d.steps if s.started_at is not None]
    ends = [s.finished_at or s.started_at for s in steps] + [d.finished_at or d.started_at]
    span = max(max(ends) - d.started_at, timedelta(seconds=1))
    return max(span, d.rto_objective * 1.05) if d.rto_objective <= span * 3 else span


def gantt_legend(d: DrillReport) -> str:
    """What the Gantt's lines mean: only those it draws (an objective far beyond the drill's
    length is said in words instead)."""
    span = _span(d)
    said = []
    if d.rto_objective <= span:
        said.append("red dashes: RTO objective")
    else:
        said.append(f"the RTO objective ({format_duration(d.rto_objective)}) is beyond the right edge: the drill "
                    f"took {short(span)}")
    if d.rto is not None and d.rto <= span:
        said.append("black dots: measured RTO (healthy)")
    return "; ".join(said)
