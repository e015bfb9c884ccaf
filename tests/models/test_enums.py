"""Status enums keep values they do not know: a pseudo-member of the enum that equals,
prints and serialises as its string."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

import platfone_async as pf
from platfone_async._convert import decode
from tests._support import ACTIVATION


def test_an_unknown_value_is_a_pseudo_member_of_its_enum() -> None:
    """``SmsStatus("smsDelayed")`` is an ``SmsStatus`` equal to the string, not listed."""
    status = pf.SmsStatus("smsDelayed")
    assert pf.SmsStatus is type(status)
    assert "smsDelayed" == status
    assert "smsDelayed" == str(status)
    assert "smsDelayed" == f"{status}"
    assert not status.is_known
    assert pf.SmsStatus.SMS_RECEIVED.is_known
    assert [m.value for m in pf.SmsStatus] == [
        "smsRequested",
        "smsReceived",
        "retryRequested",
        "retryReceived",
    ]


def test_a_known_value_is_the_member_itself() -> None:
    """A listed value gives the member, so ``is`` comparisons keep working."""
    assert pf.ActivationStatus.ACTIVE is pf.ActivationStatus("active")


def test_a_value_that_is_not_a_string_is_still_an_error() -> None:
    """Only strings are kept: ``SmsStatus(3)`` raises ``ValueError`` as an enum does."""
    with pytest.raises(ValueError, match="3 is not a valid SmsStatus"):
        pf.SmsStatus(3)


def test_an_unknown_status_survives_pickle_copy_and_json() -> None:
    """An activation with an unknown status round-trips through pickle, copy and JSON."""
    body = dict(ACTIVATION, activation_status="paused", billing_status="held")
    activation: pf.Activation = decode(body, pf.Activation, status_code=200, text=json.dumps(body))
    assert pf.ActivationStatus is type(activation.activation_status)
    assert activation == pickle.loads(pickle.dumps(activation))
    assert activation == copy.deepcopy(activation)
    assert "paused" == json.loads(activation.to_json())["activation_status"]
    again: pf.Activation = decode(activation.to_dict(), pf.Activation, status_code=200, text="")
    assert pf.BillingStatus("held") == again.billing_status
    assert activation == again


def test_an_unknown_value_from_the_wire_must_still_be_a_string() -> None:
    """A number where a status belongs is a decode error with the path, not a member."""
    body = dict(ACTIVATION, sms_status=7)
    with pytest.raises(pf.ResponseDecodeError) as caught:
        decode(body, pf.Activation, status_code=200, text=json.dumps(body))
    assert "$.sms_status" == caught.value.path
