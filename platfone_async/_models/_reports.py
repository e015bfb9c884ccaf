"""Reports: the reasons one may be filed for, the answer to filing, a filed report.

Loaded on first use (see ``_models``); no ``from __future__ import annotations``, for
the same reason as there.
"""

import datetime as dt

import attrs

from .._enums import ReportResultStatus
from . import Activation, ApiModel, publish

__all__ = ["Report", "ReportReason", "ReportResult"]


@attrs.frozen
class ReportReason(ApiModel):
    """A reason a report may be filed for, given the activation's state."""

    reason_id: int
    reason_name: str
    evidence_required: bool = False


@attrs.frozen
class ReportResult(ApiModel):
    """The answer to ``create_report``: accepted, or declined with a ``decline_id``."""

    status: ReportResultStatus
    decline_id: int | None = None


@attrs.frozen
class Report(ApiModel):
    """A report filed for an activation, with the activation as it is now."""

    reason_id: int
    reason_name: str
    created_at: dt.datetime
    updated_at: dt.datetime
    activation: Activation
    message: str | None = None
    activation_state_snapshot: str | None = None
    #: Where the evidence uploaded with the report can be fetched (None without one).
    evidence_url: str | None = None


publish(Report, ReportReason, ReportResult)
