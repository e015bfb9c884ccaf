"""Reports: which reasons an activation's state allows, one report each, and review.

The reference says the reasons depend on the activation's state without listing which;
the emulator's rule is: before any SMS, reasons about a number that gets nothing
(1 SMS is not coming, 3 not accepted, 4 used before, 7 other - without 1 once it was
cancelled); after an SMS, reasons about the SMS or the account (2, 4, 5, 6, 7, plus 1
while a retry waits). An activation with a report, or refunded, has no reasons left.

``create_report`` declines at once, with the reference's ``decline_id``, when the user
can help themselves: 1 "Try another number" for "SMS is not coming" on an activation
that may be cancelled now, 2 "Retry using the same number" for "Wrong SMS received" on
one that may be retried. Everything else is accepted and waits ``inReview`` for the
test to approve (refunding a billed activation) or decline it.

Reports have a deadline (``report_deadline`` seconds after the activation was created,
24 h by default): after it, an activation has no reasons left and ``create_report`` is
the 409 ``ReportCreationDeadlinePassed`` that Platfone's own clients handle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._ledger import Ledger, page_of, paging
from ._records import (
    ACTIVE,
    APPROVED,
    BILLED,
    CANCELED,
    DECLINED,
    IN_REVIEW,
    REFUNDED,
    RETRY_RECEIVED,
    RETRY_REQUESTED,
    SMS_RECEIVED,
    SMS_REQUESTED,
    Account,
    ActivationRecord,
    EmulatorEvent,
    ReportRecord,
)
from ._wire import WireError, bad_request, not_found, unix

__all__ = ["REPORT_REASONS", "Reports"]

# reason_id: (reason_name, evidence_required)
REPORT_REASONS: dict[int, tuple[str, bool]] = {
    1: ("SMS is not coming", True),
    2: ("Wrong SMS received", False),
    3: ("Service not accepting the number", True),
    4: ("Number has been used before", True),
    5: ("Blocked after activation", True),
    6: ("SMS received too late", False),
    7: ("Other reason", False),
}
TRY_ANOTHER_NUMBER = 1
RETRY_SAME_NUMBER = 2
MAX_MESSAGE = 1000
MAX_EVIDENCE = 5 * 1024 * 1024


class Reports:
    """The report side of the ledger."""

    def __init__(self, ledger: Ledger, evidence_url: Callable[[str], str]) -> None:
        self.ledger = ledger
        #: Where a report's uploaded evidence can be fetched, by activation id.
        self.evidence_url = evidence_url
        #: Seconds after an activation's creation during which it may be reported.
        self.deadline = 86_400.0

    def past_deadline(self, activation: ActivationRecord, now: float) -> bool:
        return now > activation.created_at + self.deadline

    def reasons(self, activation: ActivationRecord, now: float) -> list[int]:
        reported = activation.activation_id in self.ledger.reports
        if reported or activation.billing_status == REFUNDED or self.past_deadline(activation, now):
            return []
        if not activation.received_sms:
            return [3, 4, 7] if activation.activation_status == CANCELED else [1, 3, 4, 7]
        if activation.sms_status == RETRY_REQUESTED and activation.activation_status == ACTIVE:
            return [1, 2, 4, 5, 6, 7]
        return [2, 4, 5, 6, 7]

    def reasons_json(self, activation: ActivationRecord, now: float) -> list[dict[str, Any]]:
        return [
            {
                "reason_id": rid,
                "reason_name": REPORT_REASONS[rid][0],
                "evidence_required": REPORT_REASONS[rid][1],
            }
            for rid in self.reasons(activation, now)
        ]

    def create(
        self,
        activation: ActivationRecord,
        reason_id: int,
        message: str | None,
        evidence: bytes | None,
        evidence_filename: str | None,
        now: float,
    ) -> dict[str, Any]:
        if activation.activation_id in self.ledger.reports:
            raise WireError(
                409,
                "ReportAlreadyExistsException",
                f"activation {activation.activation_id} already has a report",
            )
        if self.past_deadline(activation, now):
            raise WireError(
                409,
                "ReportCreationDeadlinePassed",
                f"the deadline to report activation {activation.activation_id} has passed",
            )
        allowed = self.reasons(activation, now)
        if reason_id not in allowed:
            raise bad_request(
                f"reason_id {reason_id} is not available for this activation now "
                f"(available: {allowed})"
            )
        if message is not None and len(message) > MAX_MESSAGE:
            raise bad_request(f"message is longer than {MAX_MESSAGE} characters")
        if REPORT_REASONS[reason_id][1] and not evidence:
            raise bad_request(f"reason_id {reason_id} requires evidence")
        if evidence is not None and len(evidence) > MAX_EVIDENCE:
            raise bad_request("evidence is larger than 5MB")
        decline_id = self._decline_at_once(activation, reason_id, now)
        report = ReportRecord(
            activation_id=activation.activation_id,
            reason_id=reason_id,
            reason_name=REPORT_REASONS[reason_id][0],
            message=message,
            activation_state_snapshot=activation.snapshot(),
            created_at=unix(now),
            updated_at=unix(now),
            status=IN_REVIEW if decline_id is None else DECLINED,
            decline_id=decline_id,
            evidence=evidence,
            evidence_filename=evidence_filename,
        )
        self.ledger.reports[activation.activation_id] = report
        self.ledger.accounts[activation.api_key].report_ids.append(activation.activation_id)
        activation.report_status = report.status
        activation.updated_at = unix(now)
        if decline_id is None:
            return {"status": "accepted", "decline_id": None}
        return {"status": "declined", "decline_id": decline_id}

    def _decline_at_once(
        self, activation: ActivationRecord, reason_id: int, now: float
    ) -> int | None:
        if activation.activation_status != ACTIVE:
            return None
        cancelable = activation.cancelable_after is not None and now >= activation.cancelable_after
        if reason_id == 1 and activation.sms_status == SMS_REQUESTED and cancelable:
            return TRY_ANOTHER_NUMBER
        retriable = activation.is_retriable and activation.sms_status in (
            SMS_RECEIVED,
            RETRY_RECEIVED,
        )
        if reason_id == 2 and retriable:
            return RETRY_SAME_NUMBER
        return None

    def get(self, activation: ActivationRecord) -> ReportRecord:
        report = self.ledger.reports.get(activation.activation_id)
        if report is None:
            raise not_found(f"activation {activation.activation_id!r} has no report")
        return report

    def to_json(self, report: ReportRecord) -> dict[str, Any]:
        document: dict[str, Any] = {
            "reason_id": report.reason_id,
            "reason_name": report.reason_name,
            "message": report.message or "",
            "activation_state_snapshot": report.activation_state_snapshot,
            "updated_at": report.updated_at,
            "created_at": report.created_at,
            "activation": self.ledger.activations[report.activation_id].to_json(),
        }
        if report.evidence is not None:  # (the reference's example, without one, has none)
            document["evidence_url"] = self.evidence_url(report.activation_id)
        return document

    def page(self, account: Account, page: int, limit: int) -> dict[str, Any]:
        ids = account.report_ids[::-1]
        items = [self.to_json(self.ledger.reports[i]) for i in page_of(ids, page, limit)]
        return {"reports": items, **paging(len(ids), page, limit)}

    def review(self, activation_id: str, approve: bool, decline_id: int, now: float) -> None:
        """Approve (refunding a billed activation) or decline a report in review."""
        report = self.ledger.reports.get(activation_id)
        if report is None:
            raise KeyError(f"activation {activation_id!r} has no report")
        if report.status != IN_REVIEW:
            raise ValueError(f"the report on {activation_id} is {report.status}, not inReview")
        activation = self.ledger.activations[activation_id]
        account = self.ledger.accounts[activation.api_key]
        report.status = APPROVED if approve else DECLINED
        report.decline_id = None if approve else decline_id
        report.updated_at = unix(now)
        activation.report_status = report.status
        activation.updated_at = unix(now)
        if approve and activation.billing_status == BILLED:
            activation.billing_status = REFUNDED
            account.total += activation.price
            self.ledger.note_balance(account, now)
        data = {
            "activation_id": activation_id,
            "report_status": report.status,
            "decline_id": report.decline_id,
            "activation": activation.to_json(),
        }
        self.ledger.emit(EmulatorEvent("activation_report.updated", activation.api_key, data, now))
