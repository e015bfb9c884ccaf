"""Reports: the reasons one may be filed for, the answer to filing, a filed report.

No ``from __future__ import annotations`` (see ``_models``).
"""

import datetime as dt

import attrs

from .._enums import ReportResultStatus
from ._activation import Activation
from ._base import ApiModel, publish

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


publish(ReportReason, ReportResult, Report)  # loaded on first use: label it here
