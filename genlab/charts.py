"""Bare PIL charts for the live tab's previews: a few milliseconds a chart, where matplotlib takes 0.2-0.8 s on a
busy 2-core CPU (a third of a toy's training time at one preview a second). `numbers.plot` and `curve.plot`
stay on matplotlib for one-off pictures."""
from __future__ import annotations

import functools
import math

from PIL import Image, ImageDraw, ImageFont


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
