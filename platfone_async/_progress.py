"""``wait_for_sms(..., progress=True)``: a wait shown as text, no widget library needed.

On a terminal, and in Jupyter (whose output areas honour a carriage return), one line
is rewritten in place every second: the number, its status, the time left until
``expire_at``, and at the end the code. Anywhere else (a pipe, a log file) a plain line
is printed per change of state, and nothing in between.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TextIO

from ._clock import Clock
from ._models import Activation

__all__ = ["TextProgress", "countdown", "local_time", "phone_of"]


def phone_of(activation: Activation) -> str:
    """The number as people write it: ``+447911123456``."""
    phone = activation.phone
    return phone if phone.startswith("+") else f"+{phone}"


def local_time(moment: dt.datetime | float, today: dt.date | None = None) -> str:
    """A moment (or Unix time) on the local clock, with its zone: ``14:02:03 CET`` today,
    ``2026-12-03 14:02 CET`` another day."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(moment, dt.timezone.utc)
    local = moment.astimezone()
    zone = local.strftime("%Z") or local.strftime("%z")
    if local.date() == (today or dt.datetime.now().astimezone().date()):
        return f"{local:%H:%M:%S} {zone}"
    return f"{local:%Y-%m-%d %H:%M} {zone}"


def countdown(seconds: float) -> str:
    """``seconds`` left as ``19:42`` (or ``1:02:03``); ``0:00`` once past."""
    left = max(0, int(seconds))
    hours, rest = divmod(left, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def _is_live(stream: TextIO) -> bool:
    """A terminal, or a Jupyter kernel's output stream (it renders ``\\r``)."""
    if type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class TextProgress:
    """The display of one wait on ``stream`` (``sys.stderr`` when None)."""

    def __init__(self, clock: Clock, stream: TextIO | None = None) -> None:
        self._clock = clock
        self._stream = stream if stream is not None else sys.stderr
        self.live = _is_live(self._stream)
        self._state: Activation | None = None
        self._width = 0

    def _line(self, state: Activation) -> str:
        head = f"{phone_of(state)}  {state.service_id}/{state.country_id}"
        if state.sms_received and state.sms_code:
            return f"{head}  {state.sms_status}  code {state.sms_code}"
        if not state.is_active:
            return f"{head}  {state.activation_status}"
        left = state.expire_at.timestamp() - self._clock.time()
        expires = state.expire_at.astimezone().strftime("%H:%M:%S %Z")  # local, with its zone
        return f"{head}  {state.sms_status}  expires {expires} (in {countdown(left)})"

    def _write(self, text: str, *, end: bool) -> None:
        if self.live:
            pad = " " * max(0, self._width - len(text))
            self._width = 0 if end else len(text)
            self._stream.write(f"\r{text}{pad}{chr(10) if end else ''}")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def show(self, state: Activation) -> None:
        """A new state: rewrite the line (or print one)."""
        self._state = state
        settled = state.sms_received or not state.is_active
        self._write(self._line(state), end=settled and self.live)
        if settled:
            self._state = None

    def tick(self) -> None:
        """Another second: redraw the countdown (on a live display only)."""
        if self.live and self._state is not None:
            self._write(self._line(self._state), end=False)

    def stop(self, why: str) -> None:
        """The wait ended without a settled state (a timeout, an error, Ctrl-C)."""
        if self._state is not None:
            self._write(f"{self._line(self._state)}  - {why}", end=True)
            self._state = None
