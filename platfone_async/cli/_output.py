"""What the ``platfone`` command prints: JSON with the API's field names, or tables.

``--json`` prints one JSON document per command (JSON Lines - one state per line -
while a wait runs), built from the models, whose fields mirror the API's JSON:
timestamps as Unix seconds, statuses as their strings, prices in cents. Human output
uses rich (the ``cli`` extra) for tables; prices in dollars and cents, times local and
relative.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

import attrs

from platfone_async import Activation, Page

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CLI_EXTRA",
    "MissingExtraError",
    "Output",
    "dollars",
    "local_time",
    "page_json",
    "phone_of",
    "relative",
    "to_api",
]

CLI_EXTRA = "pip install 'platfone-async[cli]'"


class MissingExtraError(Exception):
    """Human output needs rich, from the ``cli`` extra."""


def to_api(value: object) -> Any:
    """A model as the API's JSON: the same field names, Unix times, plain strings."""
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))  # type: ignore[arg-type]
        return {f.name: to_api(getattr(value, f.name)) for f in fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): to_api(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_api(v) for v in value]
    return value


def page_json(page: Page[Any], items: str) -> dict[str, Any]:
    """A page as the API sends it: ``{"activations": [...], "page": 1, ...}``."""
    return {
        items: to_api(page.items),
        "page": page.page,
        "limit": page.limit,
        "pages": page.pages,
        "total": page.total,
    }


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def local_time(moment: dt.datetime) -> str:
    """``14:02:03``, or ``2026-12-03 14:02`` when not today (local time)."""
    local = moment.astimezone()
    if local.date() == dt.datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def relative(moment: dt.datetime, now: float) -> str:
    """``in 19m 42s`` / ``3m 5s ago``."""
    seconds = moment.timestamp() - now
    left = abs(int(seconds))
    hours, rest = divmod(left, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def phone_of(activation: Activation) -> str:
    phone = activation.phone
    return phone if phone.startswith("+") else f"+{phone}"


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
        self._console: Console | None = None

    def console(self) -> Console:
        if self._console is None:
            try:
                from rich.console import Console
            except ImportError:
                raise MissingExtraError(
                    f"tables and the live display need rich, from the cli extra: {CLI_EXTRA}"
                    " (or use --json)"
                ) from None
            # On a pipe, wide enough that no id or number is cut (rich assumes 80).
            width = None if _isatty(self.stdout) else 200
            self._console = Console(
                file=self.stdout,
                width=width,
                no_color=not self.color,
                highlight=False,
                soft_wrap=True,
            )
        return self._console

    def emit(self, value: object) -> None:
        """One JSON document (a line) on stdout."""
        self.stdout.write(json.dumps(to_api(value), ensure_ascii=False) + "\n")
        self.stdout.flush()

    def line(self, text: str) -> None:
        """A line of human output, as is (an SMS text is never read as rich markup)."""
        self.console().print(text, markup=False, highlight=False)

    def note(self, text: str) -> None:
        """A line on stderr: what the command did, warnings."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(title), title_justify="left", header_style="bold")
        for column in columns:
            justify: Literal["left", "right"] = "right" if column in _NUMERIC else "left"
            table.add_column(column, justify=justify, no_wrap=True)
        count = 0
        for row in rows:
            table.add_row(*(Text(str(cell)) for cell in row))
            count += 1
        if count:
            self.console().print(table)
        else:
            self.line(f"{title}: none")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_NUMERIC = {"price", "min", "max", "suggested", "quality", "count", "stock", "cents"}
