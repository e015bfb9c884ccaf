"""What the ``platfone`` command prints: JSON with the API's field names, or text.

``--json`` prints one JSON document per command, built from the models' ``to_dict()``
(the API's field names, timestamps as Unix seconds, statuses as strings, prices in
cents); a page is ``{"items": [...], "page", "limit", "pages", "total"}`` as the SDK's
``Page``, and ``--all`` (like a wait) streams JSON Lines, one item or state a line.

Human output: money in dollars, phone numbers with ``+``, times local with their zone
(and the date when not today). Tables are rich's (the ``cli`` extra) on a terminal and
aligned plain lines otherwise - on a pipe, or on the base install, which prints the
same facts. Colour (red errors, bold codes) needs rich and a terminal, and is off for
``--no-color`` and ``NO_COLOR``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import attrs

import platfone_async
from platfone_async import Activation

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "MissingExtraError",
    "Output",
    "dollars",
    "install_command",
    "local_time",
    "phone",
    "phone_of",
    "relative",
    "to_api",
]


class MissingExtraError(Exception):
    """A command needs an optional extra that is not installed (exit 2)."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the {extra!r} extra: {install_command(extra)}")
        self.extra = extra


def install_command(extra: str) -> str:
    """How to install ``extra``: editable from a checkout, else from PyPI."""
    root = Path(platfone_async.__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "platfone_async").is_dir():
        return f"pip install -e '.[{extra}]' (in {root})"
    return f"pip install 'platfone-async[{extra}]'"


def to_api(value: object) -> Any:
    """What ``--json`` prints for ``value``: a model's ``to_dict()``; lists and dicts of
    them; other attrs objects (the limits state) by their field names."""
    to_dict = getattr(type(value), "to_dict", None)
    if to_dict is not None:
        return to_dict(value)
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))  # type: ignore[arg-type]
        return {f.name: to_api(getattr(value, f.name)) for f in fields}
    if isinstance(value, float) and not math.isfinite(value):  # not JSON
        return None
    if isinstance(value, Mapping):
        return {str(k): to_api(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_api(v) for v in value]
    return value


def dollars(cents: int) -> str:
    """``$1.73`` (money is dollars in human output; cents in JSON)."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def local_time(moment: dt.datetime, today: dt.date | None = None) -> str:
    """``14:02:03 CET`` today, ``2026-12-03 14:02 CET`` another day (local time)."""
    local = moment.astimezone()
    zone = local.strftime("%Z") or local.strftime("%z")
    if local.date() == (today or dt.datetime.now().astimezone().date()):
        return f"{local:%H:%M:%S} {zone}"
    return f"{local:%Y-%m-%d %H:%M} {zone}"


def relative(moment: dt.datetime, now: float) -> str:
    """``in 19m 42s`` / ``3m 5s ago``."""
    seconds = moment.timestamp() - now
    left = abs(int(seconds))
    hours, rest = divmod(left, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def phone(number: str) -> str:
    """A phone number as people write it: ``+44...`` (the API sends it without)."""
    return number if number.startswith("+") else f"+{number}"


def phone_of(activation: Activation) -> str:
    return phone(activation.phone)


_Style = Literal["error", "code", "bold"]
_STYLES: dict[str, str] = {"error": "bold red", "code": "bold", "bold": "bold"}


class Output:
    """Where a command's results go: stdout (results) and stderr (notes)."""

    def __init__(
        self,
        *,
        json_mode: bool,
        color: bool = True,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.json = json_mode
        self.color = color
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self._consoles: dict[int, Console | None] = {}

    def _console(self, stream: TextIO) -> Console | None:
        """rich's console for ``stream`` when it is a terminal and rich is installed."""
        key = id(stream)
        if key not in self._consoles:
            console = None
            if _isatty(stream):
                try:
                    from rich.console import Console
                except ImportError:
                    pass
                else:
                    console = Console(
                        file=stream, no_color=not self.color, highlight=False, soft_wrap=True
                    )
            self._consoles[key] = console
        return self._consoles[key]

    def emit(self, value: object) -> None:
        """One JSON document (a line) on stdout."""
        self.stdout.write(json.dumps(to_api(value), ensure_ascii=False) + "\n")
        self.stdout.flush()

    def stream(self, items: Iterable[object]) -> None:
        """JSON Lines: one item a line, as they come (``--all``)."""
        for item in items:
            self.emit(item)

    def line(self, text: str, style: _Style | None = None) -> None:
        """A line of human output, as is (an SMS text is never read as markup); ``style``
        on a terminal with colour."""
        self._write(self.stdout, text, style)

    def note(self, text: str, style: _Style | None = None) -> None:
        """A line on stderr: what the command did, warnings, errors."""
        self._write(self.stderr, text, style)

    def _write(self, stream: TextIO, text: str, style: _Style | None) -> None:
        console = self._console(stream) if self.color else None
        if console is None or style is None:
            stream.write(text + "\n")
            stream.flush()
            return
        from rich.text import Text

        console.print(Text(text, style=_STYLES[style]))

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """Rows under a title: a rich table on a terminal, aligned plain lines otherwise."""
        cells = [[str(cell) for cell in row] for row in rows]
        if not cells:
            self.line(f"{title}: none")
            return
        console = self._console(self.stdout)
        if console is not None:
            _rich_table(console, title, columns, cells)
            return
        widths = [max(len(r[i]) for r in [list(columns), *cells]) for i in range(len(columns))]
        self.line(title)
        for row in [list(columns), *cells]:
            padded = (
                cell.rjust(width) if column in _NUMERIC else cell.ljust(width)
                for cell, width, column in zip(row, widths, columns, strict=True)
            )
            self.line("  ".join(padded).rstrip())


def _rich_table(
    console: Console, title: str, columns: Sequence[str], cells: list[list[str]]
) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", header_style="bold")
    for column in columns:
        justify: Literal["left", "right"] = "right" if column in _NUMERIC else "left"
        table.add_column(column, justify=justify, no_wrap=True)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_NUMERIC = {"price", "min", "max", "suggested", "quality", "count", "stock", "cents"}
