"""The charts of GenLab, in one module: the chapter-3 toys' pictures (points over a curve, a histogram of
numbers) and the bare PIL Chart they are drawn on. Model files hand over data and captions; no drawing lives there.

Each picture comes twice: `*_chart` in bare PIL, a few milliseconds a chart, for the previews drawn while a model
trains (matplotlib takes 0.2-0.8 s on a busy 2-core CPU: a third of a toy's training time at one preview a
second), and `*_figure` in matplotlib for the one-off pictures of the toys tab."""
from __future__ import annotations

import functools
import math

import torch
from PIL import Image, ImageDraw, ImageFont

from .images import figure, figure_to_pil


@functools.lru_cache(maxsize=4)
def _font(size: int):
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=256)
def _text(s: str, size: int, rotate: bool = False) -> Image.Image:
    """The text as a mask, rendered once: tick labels repeat on every chart, and FreeType is the slow part."""
    font = _font(size)
    _, _, w, h = font.getbbox(s, anchor="lt")
    mask = Image.new("L", (max(1, int(w) + 1), max(1, int(h) + 1)))
    ImageDraw.Draw(mask).text((0, 0), s, fill=255, font=font, anchor="lt")
    return mask.rotate(90, expand=True) if rotate else mask


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n (at most n + 1) round tick values, 1, 2 or 5 × 10^k apart, in [lo, hi]."""
    span = max(hi - lo, 1e-12)
    mag = 10 ** math.floor(math.log10(span / n))
    step = next(m * mag for m in (1, 2, 5, 10) if span / (m * mag) <= n + 1)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


class Chart:
    """A bare PIL chart: white canvas, axes box, ticks and labels; draw data on `.draw` in data coordinates
    through x() and y() (RGBA fills blend), then finish()."""

    INK = (40, 40, 40)

    def __init__(self, size: tuple[int, int], xlim, ylim, margin=(52, 26, 12, 40)):
        self.img = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.img, "RGBA")
        left, top, right, bottom = margin
        self.box = (left, top, size[0] - right, size[1] - bottom)
        self.xlim, self.ylim = xlim, ylim

    def x(self, v: float) -> float:
        (x0, x1), (l, _, r, _) = self.xlim, self.box
        return l + (v - x0) / (x1 - x0) * (r - l)

    def y(self, v: float) -> float:
        (y0, y1), (_, t, _, b) = self.ylim, self.box
        return b - (v - y0) / (y1 - y0) * (b - t)

    def text(self, xy, s: str, size: int = 11, anchor: str = "lt", fill=INK, rotate: bool = False) -> None:
        """Text placed by a two-letter anchor: l/m/r horizontally, t/m/b vertically."""
        mask = _text(s, size, rotate)
        w, h = mask.size
        x = xy[0] - {"l": 0, "m": w / 2, "r": w}[anchor[0]]
        y = xy[1] - {"t": 0, "m": h / 2, "b": h}[anchor[1]]
        self.img.paste(fill, (round(x), round(y), round(x) + w, round(y) + h), mask)

    def finish(self, title: str, xlabel: str, ylabel: str, xticks, yticks, fmt=lambda v: f"{v:g}") -> Image.Image:
        d, (l, t, r, b) = self.draw, self.box
        d.rectangle(self.box, outline=self.INK)
        for v in xticks:
            x = self.x(v)
            d.line((x, b, x, b + 4), fill=self.INK)
            self.text((x, b + 7), fmt(v), anchor="mt")
        for v in yticks:
            y = self.y(v)
            d.line((l - 4, y, l, y), fill=self.INK)
            self.text((l - 7, y), fmt(v), anchor="rm")
        self.text(((l + r) / 2, self.img.height - 6), xlabel, 12, anchor="mb")
        self.text(((l + r) / 2, t / 2), title, 13, anchor="mm", fill=(0, 0, 0))
        self.text((6, (t + b) / 2), ylabel, 12, anchor="lm", rotate=True)
        return self.img


# --- the chapter-3 toys: points over a curve, a histogram of numbers ----------------------------------------------
# curve: (xs, ys, label) of the true curve; points, real: N×2 tensors of (x, y).

LIM = (-5, 55)  # both axes of the points pictures
GENERATED, REAL, LINE = (214, 39, 40), (31, 119, 180), (68, 68, 68)


def points_chart(points: torch.Tensor, curve, title: str, real: torch.Tensor | None = None) -> Image.Image:
    """Generated points (red) and real ones (blue) over the true curve, in PIL; points outside the axes are left out."""
    c = Chart((600, 400), LIM, LIM, margin=(44, 26, 12, 40))
    xs, ys, label = curve
    c.draw.line([(c.x(x), c.y(y)) for x, y in zip(xs.tolist(), ys.tolist())], fill=LINE, width=2)
    for pts, r, fill in ((real, 1.5, REAL + (90,)), (points, 2.0, GENERATED + (180,))):
        if pts is None:
            continue
        pts = pts[torch.isfinite(pts).all(dim=1)]
        for x, y in zip(c.x(pts[:, 0]).tolist(), c.y(pts[:, 1]).tolist()):
            if c.box[0] <= x <= c.box[2] and c.box[1] <= y <= c.box[3]:  # clipped to the axes, as matplotlib does
                c.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    lx, ly = c.box[0] + 8, c.box[1] + 8  # the legend, upper left
    c.draw.rectangle((lx - 4, ly - 4, lx + 92, ly + 44), fill=(255, 255, 255, 220), outline=(200, 200, 200))
    for i, (text, fill) in enumerate(((label, None), ("real", REAL), ("generated", GENERATED))):
        y = ly + 6 + 14 * i
        if fill is None:
            c.draw.line((lx, y, lx + 14, y), fill=LINE, width=2)
        else:
            c.draw.ellipse((lx + 4, y - 3, lx + 10, y + 3), fill=fill)
        c.text((lx + 20, y), text, anchor="lm")
    ticks = range(0, 51, 10)
    return c.finish(title, "x", "y", ticks, ticks)


def points_figure(points: torch.Tensor, curve, title: str, real: torch.Tensor | None = None) -> Image.Image:
    """points_chart in matplotlib (Agg)."""
    fig = figure()
    ax = fig.subplots()
    xs, ys, label = curve
    ax.plot(xs, ys, color="#444", lw=1.5, label=label)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=6, color="#1f77b4", alpha=0.35, label="real")
    ax.scatter(points[:, 0], points[:, 1], s=8, color="#d62728", alpha=0.7, label="generated")
    ax.set_xlim(*LIM)
    ax.set_ylim(*LIM)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return figure_to_pil(fig)


def histogram_chart(ints: torch.Tensor, depth: int, good, title: str, xlabel: str) -> Image.Image:
    """Counts of the integers 0..depth-1, in PIL: green where good(i), red elsewhere."""
    counts = torch.bincount(ints, minlength=depth)[:depth].tolist()
    top = max(max(counts), 1) * 1.05
    c = Chart((700, 300), (-1, depth), (0, top))
    for i, n in enumerate(counts):
        if n:
            c.draw.rectangle((c.x(i - 0.45), c.y(n), c.x(i + 0.45), c.y(0)),
                             fill=(44, 160, 44) if good(i) else GENERATED)
    yticks = [v for v in nice_ticks(0, top) if v == int(v)]
    return c.finish(title, xlabel, "count", range(0, depth, 10), yticks)


def histogram_figure(ints: torch.Tensor, depth: int, good, title: str, xlabel: str) -> Image.Image:
    """histogram_chart in matplotlib (Agg)."""
    counts = torch.bincount(ints, minlength=depth)[:depth]
    fig = figure(7, 3)
    ax = fig.subplots()
    ax.bar(range(depth), counts.tolist(), color=["#2ca02c" if good(i) else "#d62728" for i in range(depth)], width=0.9)
    ax.set_xlim(-1, depth)
    ax.set_xticks(range(0, depth, 10))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return figure_to_pil(fig)
