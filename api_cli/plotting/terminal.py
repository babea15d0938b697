"""Charts drawn with Unicode braille in the terminal, sized to its width.

Each character cell holds 2 x 4 dots, so an 80-column terminal gives a chart about 140 dots wide.
With colour the runs are overlaid, one colour each; without (a pipe, ``NO_COLOR``) each run gets
its own chart on shared axes, since overlaid dots of one colour could not be told apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

from rich.text import Text

from api_cli.plotting.curves import Curve, value_range

#: Dots per character cell, across and down.
DOTS_X = 2
DOTS_Y = 4
_BRAILLE_BASE = 0x2800
#: The braille bit of the dot at (x, y) within a cell.
_DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
COLOURS = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white")
#: Narrowest chart drawn (in characters), whatever the terminal says.
MIN_WIDTH = 40


class BrailleCanvas:
    """A grid of braille cells; each cell remembers the series that last drew in it."""

    def __init__(self, width_cells: int, height_cells: int) -> None:
        self.width_cells = width_cells
        self.height_cells = height_cells
        self._bits = [[0] * width_cells for _ in range(height_cells)]
        self._owner = [[-1] * width_cells for _ in range(height_cells)]

    @property
    def width_dots(self) -> int:
        """Dots across."""
        return self.width_cells * DOTS_X

    @property
    def height_dots(self) -> int:
        """Dots down."""
        return self.height_cells * DOTS_Y

    def dot(self, x: int, y: int, series: int) -> None:
        """Set the dot at (x, y), y counted from the top; dots off the canvas are ignored."""
        if 0 <= x < self.width_dots and 0 <= y < self.height_dots:
            row, column = y // DOTS_Y, x // DOTS_X
            self._bits[row][column] |= _DOT_BITS[x % DOTS_X][y % DOTS_Y]
            self._owner[row][column] = series

    def line(self, start: tuple[int, int], end: tuple[int, int], series: int) -> None:
        """Join two dots (Bresenham), so a curve stays continuous where it is steep."""
        (x0, y0), (x1, y1) = start, end
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        step_x, step_y = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error = dx + dy
        while True:
            self.dot(x0, y0, series)
            if (x0, y0) == (x1, y1):
                return
            doubled = 2 * error
            if doubled >= dy:
                error += dy
                x0 += step_x
            if doubled <= dx:
                error += dx
                y0 += step_y

    def rows(
        self,
        styles: Sequence[str | None],
        marks: Mapping[tuple[int, int], tuple[str, str | None]] | None = None,
    ) -> Iterator[Text]:
        """The canvas as lines of text, each cell styled by the series that drew it last.

        ``marks`` replaces whole cells, keyed by the dot (x, y) inside them, with a character and
        a style (e.g. an x where a pruned trial stopped).
        """
        cells = {(y // DOTS_Y, x // DOTS_X): mark for (x, y), mark in (marks or {}).items()}
        for row_index, (bits_row, owner_row) in enumerate(
            zip(self._bits, self._owner, strict=True)
        ):
            text = Text()
            for column, (bits, owner) in enumerate(zip(bits_row, owner_row, strict=True)):
                mark = cells.get((row_index, column))
                if mark is not None:
                    text.append(mark[0], style=mark[1])
                    continue
                style = styles[owner % len(styles)] if owner >= 0 and styles else None
                text.append(chr(_BRAILLE_BASE + bits), style=style)
            yield text


def render_chart(
    curves: Sequence[Curve],
    *,
    title: str,
    width: int,
    height: int,
    colour: bool,
    higher_is_better: bool = False,
) -> list[Text]:
    """A chart of ``curves`` in ``width`` x about ``height`` characters, with axes and a legend.

    Each legend line says where the smoothed curve started and ended, and its best point
    (the lowest, or with ``higher_is_better`` the highest).
    """
    if not colour and len(curves) > 1:
        lines = [Text(title)]
        low_high = value_range(curves)
        for index, curve in enumerate(curves):
            lines.append(Text(f"{_marker(index)} {curve.label}"))
            lines.extend(_chart([curve], low_high, width, max(4, height // len(curves)), False))
        lines.extend(_legend(curves, colour=False, higher_is_better=higher_is_better))
        return lines
    body = _chart(curves, value_range(curves), width, height, colour)
    return [Text(title), *body, *_legend(curves, colour=colour, higher_is_better=higher_is_better)]


def _chart(
    curves: Sequence[Curve],
    low_high: tuple[float, float],
    width: int,
    height: int,
    colour: bool,
) -> list[Text]:
    low, high = low_high
    labels = [format_number(high), format_number((low + high) / 2), format_number(low)]
    label_width = max(len(label) for label in labels)
    # One column is left free: a line exactly as wide as the terminal wraps in some terminals.
    canvas = BrailleCanvas(max(MIN_WIDTH, width) - label_width - 3, max(2, height))
    x_low, x_high = _step_range(curves)
    for index, curve in enumerate(curves):
        _draw(canvas, curve, index, (x_low, x_high), (low, high))
    styles = list(COLOURS) if colour else []
    lines = []
    middle = canvas.height_cells // 2
    for row_index, row in enumerate(canvas.rows(styles)):
        label = {0: labels[0], middle: labels[1], canvas.height_cells - 1: labels[2]}.get(
            row_index, ""
        )
        tick = "┤" if label else "│"
        lines.append(Text(f"{label:>{label_width}} {tick}") + row)
    lines.append(Text(" " * label_width + " └" + "─" * canvas.width_cells))
    lines.append(Text(" " * (label_width + 2) + x_axis(x_low, x_high, canvas.width_cells)))
    return lines


def _draw(
    canvas: BrailleCanvas,
    curve: Curve,
    series: int,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> None:
    previous: tuple[int, int] | None = None
    for step, value in zip(curve.steps.tolist(), curve.smoothed.tolist(), strict=True):
        if not math.isfinite(value):
            previous = None  # a gap, not a line across it
            continue
        point = (
            scale_to_dots(step, x_range, canvas.width_dots),
            canvas.height_dots - 1 - scale_to_dots(value, y_range, canvas.height_dots),
        )
        if previous is None:
            canvas.dot(*point, series)
        else:
            canvas.line(previous, point, series)
        previous = point


def scale_to_dots(value: float, value_range: tuple[float, float], dots: int) -> int:
    low, high = value_range
    if high <= low:
        return 0
    return min(dots - 1, max(0, round((value - low) / (high - low) * (dots - 1))))


def _step_range(curves: Sequence[Curve]) -> tuple[float, float]:
    ends = [float(curve.steps[-1]) for curve in curves if curve.steps.size]
    return 1.0, max([2.0, *ends])


def x_axis(x_low: float, x_high: float, width: int) -> str:
    """Step numbers at the left, middle and right end of the axis."""
    left, middle, right = f"{x_low:,.0f}", f"{(x_low + x_high) / 2:,.0f}", f"{x_high:,.0f} step"
    return place_labels(
        [(left, 0), (middle, (width - len(middle)) // 2), (right, width - len(right))], width
    )


def place_labels(labels: Sequence[tuple[str, int]], width: int) -> str:
    """A line ``width`` wide with each text starting at its column (later ones overwrite)."""
    axis = [" "] * width
    for text, start in labels:
        for offset, char in enumerate(text):
            if 0 <= start + offset < width:
                axis[start + offset] = char
    return "".join(axis).rstrip()


def _legend(curves: Sequence[Curve], *, colour: bool, higher_is_better: bool) -> list[Text]:
    lines = []
    for index, curve in enumerate(curves):
        style = COLOURS[index % len(COLOURS)] if colour else ""
        line = Text(f"{_marker(index)} ", style=style)
        line.append(f"{curve.label}: {_summary(curve, higher_is_better)}")
        lines.append(line)
    return lines


def _summary(curve: Curve, higher_is_better: bool) -> str:
    finite = [
        (value, step)
        for step, value in zip(curve.steps.tolist(), curve.smoothed.tolist(), strict=True)
        if math.isfinite(value)
    ]
    if not finite:
        return "no finite values yet"
    first, last = finite[0][0], finite[-1][0]
    best_value, best_step = max(finite) if higher_is_better else min(finite)
    best = f"{'max' if higher_is_better else 'min'} {format_number(best_value)}"
    return (
        f"{format_number(first)} → {format_number(last)} at step {finite[-1][1]:,.0f} "
        f"({best} at step {best_step:,.0f})"
    )


def _marker(index: int) -> str:
    return "●" if index < len(COLOURS) else "○"


def format_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4f}"
