"""The progress line, as plain text fitted to a width: numbers are never cut.

``progress_line`` tries layouts from the richest to the barest — shorter labels, then no bar,
then no ETA, then no speed, then no metrics — and takes the first that fits; the bar gets
whatever width is left. A layout too wide even when bare is returned whole: a terminal that
wraps a line is better than a number cut to ``2000…``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Narrower than this, a bar says nothing.
MIN_BAR_CHARS = 10
BAR_DONE, BAR_LEFT = "━", "─"


@dataclass(frozen=True)
class Snapshot:
    """What a wait shows at one moment."""

    label: str  # "run 7"
    status: str  # "queued", "running", "succeeded", ...
    steps_done: int = 0
    steps_total: int | None = None
    phase: str | None = None  # before the first steps: "starting: loading data, compiling"
    phase_short: str | None = None  # the same in a few words, for narrow terminals
    loss: float | None = None
    accuracy: float | None = None
    steps_per_s: float | None = None
    rate_label: str = "steps/s"  # "steps/s wall" once the run's own measure is shown
    elapsed_s: float = 0.0
    eta_s: float | None = None
    unit: str = "steps"
    final: bool = False  # the run is terminal: this is the last line

    @property
    def phase_key(self) -> str:
        """Identifies the phase for "has anything changed?" (the short text, or the status)."""
        return self.phase_short or self.phase or self.status


def progress_line(snapshot: Snapshot, width: int) -> str:
    """The line for a terminal ``width`` characters wide (see the module docstring)."""
    if snapshot.phase and not snapshot.steps_done and not snapshot.final:
        return _phase_line(snapshot, width)
    candidates = _layouts(snapshot)
    for parts, with_bar in candidates:
        text = "  ".join(part for part in parts if part)
        if not with_bar:
            if len(text) <= width:
                return text
            continue
        room = width - len(text) - 2
        if room >= MIN_BAR_CHARS:
            head, _, rest = text.partition("  ")
            return f"{head}  {_bar(snapshot, room)}  {rest}"
    parts, _ = candidates[-1]
    return "  ".join(part for part in parts if part)


def plain_line(snapshot: Snapshot) -> str:
    """A self-contained line for logs, every label in full, no bar."""
    if snapshot.phase and not snapshot.steps_done and not snapshot.final:
        return f"{snapshot.label} {snapshot.status}: {snapshot.phase}"
    parts = [
        f"{snapshot.label} {snapshot.status}",
        _count(snapshot) + _percent(snapshot),
        _metrics(snapshot, short=False),
        _rate(snapshot, short=False),
        f"elapsed {clock(snapshot.elapsed_s)}",
        _eta(snapshot, short=False),
    ]
    return "  ".join(part for part in parts if part)


def _layouts(snapshot: Snapshot) -> list[tuple[list[str], bool]]:
    """Candidate layouts, richest first; True where the layout has a bar."""
    long_head = f"{snapshot.label} {snapshot.status}"
    count = _count(snapshot)
    full = [
        long_head,
        count,
        _metrics(snapshot, short=False),
        _rate(snapshot, short=False),
        clock(snapshot.elapsed_s),
        _eta(snapshot, short=False),
    ]
    short_metrics = _metrics(snapshot, short=True)
    short_rate = _rate(snapshot, short=True)
    short_eta = _eta(snapshot, short=True)
    return [
        (full, True),
        ([long_head, count, short_metrics, short_rate, short_eta], True),
        ([snapshot.label, count, short_metrics, short_rate, short_eta], True),
        ([snapshot.label, count, short_metrics, short_rate, short_eta], False),
        ([snapshot.label, count, short_metrics, short_rate], False),
        ([snapshot.label, count, short_metrics], False),
        ([snapshot.label, count], False),
        ([count], False),
    ]


def _phase_line(snapshot: Snapshot, width: int) -> str:
    long = f"{snapshot.label} {snapshot.status}: {snapshot.phase}"
    if len(long) <= width:
        return long
    short = f"{snapshot.label}: {snapshot.phase_short or snapshot.status}"
    if len(short) <= width:
        return short
    return snapshot.label if len(snapshot.label) <= width else short


def _bar(snapshot: Snapshot, chars: int) -> str:
    fraction = snapshot.steps_done / snapshot.steps_total if snapshot.steps_total else 0.0
    done = min(chars, round(chars * fraction))
    return BAR_DONE * done + BAR_LEFT * (chars - done)


def _count(snapshot: Snapshot) -> str:
    if snapshot.steps_total is None:
        return f"{snapshot.steps_done:,} {snapshot.unit}"
    return f"{snapshot.steps_done:,}/{snapshot.steps_total:,}"


def _percent(snapshot: Snapshot) -> str:
    if not snapshot.steps_total:
        return ""
    return f" {snapshot.unit} ({100 * snapshot.steps_done / snapshot.steps_total:.0f}%)"


def _metrics(snapshot: Snapshot, *, short: bool) -> str:
    if snapshot.loss is None and snapshot.accuracy is None:
        return ""
    # The precision of the final report, so that the bar ends on the summary's very numbers.
    loss = "-" if snapshot.loss is None else f"{snapshot.loss:.4f}"
    accuracy = "-" if snapshot.accuracy is None else f"{snapshot.accuracy:.4f}"
    return f"loss {loss} acc {accuracy}" if short else f"loss {loss}  accuracy {accuracy}"


def _rate(snapshot: Snapshot, *, short: bool) -> str:
    if snapshot.steps_per_s is None:
        return ""
    return f"{snapshot.steps_per_s:,.0f} {'/s' if short else snapshot.rate_label}".replace(
        " /", "/"
    )


def _eta(snapshot: Snapshot, *, short: bool) -> str:
    if snapshot.eta_s is None or snapshot.final:
        return ""
    return f"{'eta' if short else 'ETA'} {clock(snapshot.eta_s)}"


def clock(seconds: float) -> str:
    """``75`` → ``"1:15"``, ``3700`` → ``"1:01:40"``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
