"""Small inline-SVG charts for the report (no JavaScript, no external resources).

Every chart is an ``<svg role="img">`` with a ``<title>`` and an ``aria-label``; every data mark carries the class
``mark`` so a test can count them. Colours are from a colour-blind-safe palette (Okabe-Ito) and every series also
has its own dash pattern or marker, so nothing relies on colour alone.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "4 4", "")
CEILING = "#6b6b6b"


def _fmt_tick(v: float, log: bool = False) -> str:
    if v == 0:
        return "0"
    if log and abs(v) >= 1000:
        return f"1e{round(math.log10(abs(v)))}"
    if abs(v) >= 1e4 or abs(v) < 0.001:
        exp = math.floor(math.log10(abs(v)))
        if abs(v / 10**exp - 1) < 1e-9:
            return f"1e{exp}"
        return f"{v:.0e}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


class Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float, log: bool = False):
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if hi <= lo:
            hi = lo + 1.0
        self.lo, self.hi, self.a, self.b, self.log = lo, hi, a, b, log

    def __call__(self, v: float) -> float:
        if self.log:
            v = math.log10(max(v, 10**self.lo))
        v = min(max(v, self.lo), self.hi)
        return self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0**e for e in range(math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9) + 1)]
        span = self.hi - self.lo
        step = 10 ** math.floor(math.log10(span / 4))
        for m in (1, 2, 2.5, 5, 10):
            if span / (step * m) <= 6:
                step *= m
                break
        start = math.ceil(self.lo / step - 1e-9) * step
        return [round(start + i * step, 10) for i in range(int((self.hi - start) / step + 1e-9) + 1)]


class Chart:
    """One x/y chart. ``x``/``y`` are (lo, hi, log)."""

    def __init__(self, fig_id: str, title: str, x, y, xlabel: str, ylabel: str, width: int = 420, height: int = 300):
        self.fig_id, self.title, self.width, self.height = fig_id, title, width, height
        self.left, self.right, self.top, self.bottom = 58, 12, 28, 44
        self.sx = Scale(x[0], x[1], self.left, width - self.right, x[2])
        self.sy = Scale(y[0], y[1], height - self.bottom, self.top, y[2])
        self.xlabel, self.ylabel = xlabel, ylabel
        self.parts: list[str] = []
        self.legend: list[tuple[str, str, str, str]] = []  # label, colour, dash, marker

    def line(
        self,
        xs,
        ys,
        label: str | None = None,
        colour: str = PALETTE[0],
        dash: str = "",
        width: float = 2,
        step: bool = False,
    ):
        pts = [(self.sx(x), self.sy(y)) for x, y in zip(xs, ys) if x is not None and y is not None]
        if not pts:
            return
        if step:
            stepped = [pts[0]]
            for (_x0, y0), (x1, y1) in zip(pts, pts[1:]):
                stepped += [(x1, y0), (x1, y1)]
            pts = stepped
        d = "M" + " L".join(f"{x:.2f},{y:.2f}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<path class="mark" d="{d}" fill="none" stroke="{colour}" stroke-width="{width}"{dash_attr}/>'
        )
        if label:
            self.legend.append((label, colour, dash, ""))

    def points(
        self,
        xs,
        ys,
        label: str | None = None,
        colour: str = PALETTE[0],
        marker: str = "circle",
        lo=None,
        hi=None,
        size: float = 4.5,
    ):
        for i, (x, y) in enumerate(zip(xs, ys)):
            if x is None or y is None:
                continue
            px, py = self.sx(x), self.sy(y)
            if lo is not None and hi is not None and lo[i] is not None and hi[i] is not None:
                y0, y1 = self.sy(lo[i]), self.sy(hi[i])
                self.parts.append(
                    f'<path class="mark errorbar" d="M{px:.2f},{y0:.2f} L{px:.2f},{y1:.2f} '
                    f"M{px - 4:.2f},{y0:.2f} L{px + 4:.2f},{y0:.2f} M{px - 4:.2f},{y1:.2f} "
                    f'L{px + 4:.2f},{y1:.2f}" stroke="{colour}" stroke-width="1.5" fill="none"/>'
                )
            self.parts.append(_marker(marker, px, py, size, colour))
        if label:
            self.legend.append((label, colour, "", marker))

    def vline(self, x, label: str, colour: str = "#000000"):
        px = self.sx(x)
        self.parts.append(
            f'<path class="mark chosen" d="M{px:.2f},{self.top} L{px:.2f},{self.height - self.bottom}"'
            f' stroke="{colour}" stroke-width="1.5" stroke-dasharray="3 3"/>'
        )
        self.parts.append(
            f'<text x="{px + 3:.2f}" y="{self.top + 10}" font-size="11" fill="{colour}">{escape(label)}</text>'
        )

    def hline(self, y, label: str, colour: str = "#000000"):
        py = self.sy(y)
        self.parts.append(
            f'<path class="mark target" d="M{self.left},{py:.2f} L{self.width - self.right},{py:.2f}"'
            f' stroke="{colour}" stroke-width="1.2" stroke-dasharray="5 3"/>'
        )
        self.parts.append(
            f'<text x="{self.left + 4}" y="{py - 4:.2f}" font-size="11" fill="{colour}">{escape(label)}</text>'
        )

    def render(self) -> str:
        w, h, L, R, T, B = self.width, self.height, self.left, self.right, self.top, self.bottom
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-fig="{escape(self.fig_id)}" '
            f'role="img" aria-label="{escape(self.title)}" viewBox="0 0 {w} {h + 18 * len(self.legend)}" '
            f'width="{w}" height="{h + 18 * len(self.legend)}" font-family="sans-serif">',
            f"<title>{escape(self.title)}</title>",
            f'<rect x="{L}" y="{T}" width="{w - L - R}" height="{h - T - B}" fill="#ffffff" stroke="#333333"/>',
        ]
        for t in self.sx.ticks():
            px = self.sx(t)
            out.append(
                f'<path d="M{px:.2f},{h - B} L{px:.2f},{h - B + 4}" stroke="#333333"/>'
                f'<text x="{px:.2f}" y="{h - B + 16}" font-size="11" text-anchor="middle" fill="#222222">'
                f"{_fmt_tick(t, self.sx.log)}</text>"
            )
        for t in self.sy.ticks():
            py = self.sy(t)
            out.append(
                f'<path d="M{L - 4},{py:.2f} L{L},{py:.2f}" stroke="#333333"/>'
                f'<path d="M{L},{py:.2f} L{w - R},{py:.2f}" stroke="#e6e6e6"/>'
                f'<text x="{L - 6}" y="{py + 4:.2f}" font-size="11" text-anchor="end" fill="#222222">'
                f"{_fmt_tick(t, self.sy.log)}</text>"
            )
        out.append(
            f'<text x="{(L + w - R) / 2:.1f}" y="{h - 8}" font-size="12" text-anchor="middle" '
            f'fill="#222222">{escape(self.xlabel)}</text>'
        )
        out.append(
            f'<text x="14" y="{(T + h - B) / 2:.1f}" font-size="12" text-anchor="middle" fill="#222222" '
            f'transform="rotate(-90 14 {(T + h - B) / 2:.1f})">{escape(self.ylabel)}</text>'
        )
        out.append(f'<text x="{L}" y="16" font-size="13" font-weight="bold" fill="#222222">{escape(self.title)}</text>')
        out.extend(self.parts)
        for i, (label, colour, dash, marker) in enumerate(self.legend):
            y = h + 4 + 18 * i
            if marker:
                out.append(_marker(marker, L + 12, y, 4.5, colour, cls="legend"))
            else:
                dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(f'<path d="M{L},{y} L{L + 24},{y}" stroke="{colour}" stroke-width="2"{dash_attr}/>')
            out.append(f'<text x="{L + 30}" y="{y + 4}" font-size="11" fill="#222222">{escape(label)}</text>')
        out.append("</svg>")
        return "".join(out)


def _marker(kind: str, x: float, y: float, r: float, colour: str, cls: str = "mark") -> str:
    if kind == "square":
        return (
            f'<rect class="{cls}" x="{x - r:.2f}" y="{y - r:.2f}" width="{2 * r:.2f}" height="{2 * r:.2f}" '
            f'fill="{colour}"/>'
        )
    if kind == "triangle":
        return (
            f'<path class="{cls}" d="M{x:.2f},{y - r * 1.2:.2f} L{x + r:.2f},{y + r:.2f} L{x - r:.2f},'
            f'{y + r:.2f} Z" fill="{colour}"/>'
        )
    if kind == "diamond":
        return (
            f'<path class="{cls}" d="M{x:.2f},{y - r * 1.3:.2f} L{x + r:.2f},{y:.2f} L{x:.2f},{y + r * 1.3:.2f}'
            f' L{x - r:.2f},{y:.2f} Z" fill="{colour}"/>'
        )
    return f'<circle class="{cls}" cx="{x:.2f}" cy="{y:.2f}" r="{r:.2f}" fill="{colour}"/>'


def icon_array(
    fig_id: str,
    title: str,
    highlighted: int,
    total: int = 100,
    per_row: int = 10,
    colour: str = "#D55E00",
    other: str = "#c8c8c8",
) -> str:
    """``total`` person icons, the first ``highlighted`` filled with ``colour``."""
    size, gap = 22, 6
    rows = math.ceil(total / per_row)
    w, h = per_row * (size + gap), rows * (size + gap)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart icons" data-fig="{escape(fig_id)}" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(total):
        r, c = divmod(i, per_row)
        x, y = c * (size + gap) + size / 2, r * (size + gap)
        fill = colour if i < highlighted else other
        kind = "member" if i < highlighted else "other"
        out.append(
            f'<g class="mark person {kind}" fill="{fill}"><circle cx="{x:.1f}" cy="{y + 5:.1f}" r="4.5"/>'
            f'<path d="M{x - 7:.1f},{y + 22:.1f} Q{x:.1f},{y + 6:.1f} {x + 7:.1f},{y + 22:.1f} Z"/></g>'
        )
    out.append("</svg>")
    return "".join(out)
