"""The control API over a real loopback port, driven with plain httpx (no SDK): every
operation, its errors, faults as a client in another language would see them, the serve
options, a clean stop on SIGINT and SIGTERM, and a full flow with a webhook receiver."""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from platfone_async import AsyncPlatfone
from platfone_async.testing import OPERATIONS, PlatfoneEmulator
from platfone_async.webhooks import ActivationUpdated, WebhookHandler
from tests._served import Served, serve

uvicorn = pytest.importorskip("uvicorn")

KEY_A, KEY_B = "key-a-0001", "key-b-0002"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """One virtual-clock emulator for the module: two accounts, no automatic SMS."""
    options = ["--clock", "virtual", "--sms-delay", "-1", "--no-rate-limits"]
    with serve(*options, "--api-key", KEY_A, "--api-key", KEY_B, "--balance", "5000") as server:
        yield server


@pytest.fixture
def control(served: Served) -> Iterator[httpx.Client]:
    """A plain httpx client of the control API; the emulator is reset before each test."""
    with httpx.Client(base_url=served.control_url, timeout=5, trust_env=False) as http:
        assert 200 == http.post("reset").status_code
        yield http


@pytest.fixture
def api(served: Served) -> Iterator[httpx.Client]:
    """A plain httpx client of the Platfone API itself, as account A."""
    headers = {"x-api-key": KEY_A, "content-type": "application/json"}
    with httpx.Client(
        base_url=served.base_url, headers=headers, timeout=5, trust_env=False
    ) as http:
        yield http


class Driver:
    """Calls control operations and remembers which were called."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.called: set[str] = set()

    def get(self, name: str, **params: str) -> Any:
        return self._result(name, self.http.get(name, params=params))

    def post(self, name: str, **body: Any) -> Any:
        return self._result(name, self.http.post(name, content=json.dumps(body)))

    def _result(self, name: str, response: httpx.Response) -> Any:
        assert 200 == response.status_code, response.text
        self.called.add(name)
        return response.json()["result"]


def _order(api: httpx.Client, service_id: str = "telegram") -> str:
    response = api.post("/activation", json={"service_id": service_id, "country_id": "uk"})
    assert 200 == response.status_code, response.text
    activation_id: str = response.json()["activation_id"]
    return activation_id


def test_every_operation_over_http(control: httpx.Client, api: httpx.Client) -> None:
    """Each operation of the control API does what its in-process twin does."""
    ops = Driver(control)
    # accounts and money
    assert "key-c" == ops.post("add_account", api_key="key-c", balance=700)
    assert {"total": 700, "reserved": 0, "available": 700} == ops.get("balance", api_key="key-c")
    ops.post("set_balance", total=9_000)
    assert 9_000 == api.get("/user/balance").json()["total"]
    # SMS, server-side endings and reports
    first = _order(api)
    assert "smsRequested" == ops.get("activation", activation_id=first)["sms_status"]
    assert ops.post("deliver_sms", activation_id=first, code="4242", text="code 4242") is True
    shown = api.get(f"/activation/{first}").json()
    assert ("4242", "code 4242") == (shown["sms_code"], shown["sms_text"])
    assert 200 == api.post(f"/activation/{first}/report", json={"reason_id": 7}).status_code
    assert "inReview" == ops.get("report", activation_id=first)["status"]
    ops.post("approve_report", activation_id=first)
    second = _order(api)
    ops.post("deliver_sms", activation_id=second, code="1")
    api.post(f"/activation/{second}/report", json={"reason_id": 7})
    ops.post("decline_report", activation_id=second, decline_id=2)
    assert (2, "declined") == tuple(
        ops.get("report", activation_id=second)[k] for k in ("decline_id", "status")
    )
    ops.post("finalize", activation_id=second)
    third, fourth = _order(api), _order(api)
    ops.post("cancel", activation_id=third)
    ops.post("expire", activation_id=fourth)
    statuses = [
        api.get(f"/activation/{a}").json()["activation_status"] for a in (second, third, fourth)
    ]
    assert ["finalized", "canceled", "expired"] == statuses
    # automatic SMS and time
    ops.post("set_sms_policy", policy={"delay": 30, "code_length": 4})
    fifth = _order(api)
    ops.post("advance", seconds=29)
    ops.post("tick")
    assert "smsRequested" == ops.get("activation", activation_id=fifth)["sms_status"]
    ops.post("advance", seconds=1)
    assert 4 == len(ops.get("activation", activation_id=fifth)["sms_code"])
    ops.post("set_sms_policy", policy=None)
    # the market: one offer, its stock going down with each order
    ops.post(
        "set_offer",
        service_id="telegram",
        country_id="uk",
        price=321,
        quality=0.9,
        count=2,
        cancel_after=None,
    )
    sixth = _order(api)
    price = api.get("/activation/prices/services/telegram/countries/uk").json()
    assert (321, 0.9, 1) == (price["price"]["min"], price["quality"]["avg"], price["count"])
    assert (321, None) == tuple(
        ops.get("activation", activation_id=sixth)[k] for k in ("price", "cancelable_after")
    )
    ops.post("expire", activation_id=sixth)
    # hold and block
    ops.post("set_on_hold")
    assert 403 == api.get("/user/balance").status_code
    ops.post("set_on_hold", on_hold=False)
    ops.post("block", seconds=3_600)
    blocked = api.post("/activation", json={"service_id": "telegram", "country_id": "uk"})
    assert (429, "LowSuccessRateException") == (blocked.status_code, blocked.json()["errorName"])
    ops.post("unblock")
    # faults and limits
    ops.post("inject_fault", route="get_balance", fault={"status": 503}, times=2)
    assert [503, 503, 200] == [api.get("/user/balance").status_code for _ in range(3)]
    ops.post("inject_fault", route="*", fault={"status": 500})
    ops.post("clear_faults")
    assert 200 == api.get("/user/balance").status_code
    ops.post("set_rate_limit", route="get_balance", limit=[1, 60])
    assert [200, 429] == [api.get("/user/balance").status_code for _ in range(2)]
    ops.post("reset_rate_windows")
    assert 200 == api.get("/user/balance").status_code
    ops.post("set_rate_limit", route="get_balance", limit=None)
    # webhooks: nothing listens on port 9 (discard), so the one attempt fails
    ops.post("configure_webhooks", url="http://127.0.0.1:9/hook", secret="s", max_attempts=1)
    ops.post("deliver_sms", activation_id=_order(api), code="77")
    deadline = time.monotonic() + 5
    while not (attempts := ops.get("webhook_attempts")):
        assert time.monotonic() < deadline, "no webhook attempt was made"
        time.sleep(0.01)
    assert [("activation.updated", False)] == [(a["type"], a["delivered"]) for a in attempts]
    # what happened
    ledger = ops.get("ledger")
    assert {"orders_placed": 7, "billed": 3, "refunded": 1, "active": 3} == {
        k: ledger[k] for k in ("orders_placed", "billed", "refunded", "active")
    }
    assert 7 == len(ops.get("activations"))
    assert 7 == len(ops.get("requests", route="create_activation")) - 1  # one was blocked
    # everything
    ops.post("reset")
    assert (0, []) == (ops.get("ledger")["orders_placed"], ops.get("requests"))
    assert 700 == ops.get("balance", api_key="key-c")["total"]
    assert set(OPERATIONS) == ops.called


def _attempts_when(ops: Driver, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while len(attempts := ops.get("webhook_attempts")) < count:
        assert time.monotonic() < deadline, f"{count} webhook attempts were not made"
        time.sleep(0.01)
    return list(attempts)


def test_served_webhooks_are_retried_on_the_virtual_clock(
    control: httpx.Client, api: httpx.Client
) -> None:
    """A failed delivery is tried again after its backoff, when advance() passes it."""
    ops = Driver(control)
    ops.post("configure_webhooks", url="http://127.0.0.1:9/", secret="s", max_attempts=2, backoff=5)
    ops.post("deliver_sms", activation_id=_order(api), code="1")
    first = _attempts_when(ops, 1)
    ops.post("advance", seconds=4)
    ops.post("tick")
    assert 1 == len(ops.get("webhook_attempts"))  # not due yet
    ops.post("advance", seconds=1)
    both = _attempts_when(ops, 2)
    assert [(1, False), (2, False)] == [(a["attempt"], a["delivered"]) for a in both]
    assert first[0]["event_id"] == both[1]["event_id"]
    assert 5 == both[1]["time"] - both[0]["time"]


def test_the_operations_are_the_emulators_own_methods() -> None:
    """Each operation calls the PlatfoneEmulator method of its name, with its parameters."""
    for operation in OPERATIONS.values():
        method = getattr(PlatfoneEmulator, operation.target)
        parameters = dict(inspect.signature(method).parameters)
        parameters.pop("self")
        required = {n for n, p in parameters.items() if p.default is inspect.Parameter.empty}
        door = {p.name for p in operation.params} | set(operation.in_process_only)
        assert set(parameters) == door, operation.name
        # over HTTP a parameter may be required that has an in-process alternative
        # (configure_webhooks' url, for want of an app): never the other way round
        assert required <= {p.name for p in operation.params if p.required}, operation.name


def test_the_listing_and_the_errors(control: httpx.Client, api: httpx.Client) -> None:
    """GET /_emulator/ lists every operation; bad calls get 400/404/405/409 with a reason."""
    listing = control.get("").json()["operations"]
    assert sorted(OPERATIONS) == sorted(op["name"] for op in listing)
    expired = _order(api)
    control.post("expire", json={"activation_id": expired})
    cases = [
        (control.post("no_such_thing"), 404, "no control operation 'no_such_thing'"),
        (control.get("deliver_sms"), 405, "deliver_sms is POST, not GET"),
        (control.post("deliver_sms", json={"activation_id": expired}), 400, "needs code"),
        (control.post("advance", json={"seconds": "soon"}), 400, "seconds must be a number"),
        (control.post("advance", content=b'{"seconds": NaN}'), 400, "a finite number"),
        (control.post("advance", json={"minutes": 1}), 400, "advance takes ['seconds']"),
        (control.post("advance", content=b"{"), 400, "the body is not valid JSON"),
        (control.post("expire", json={"activation_id": "nope"}), 404, "no activation 'nope'"),
        (control.post("inject_fault", json={"route": "x", "fault": {"oops": 1}}), 400, "oops"),
        (
            control.post("deliver_sms", json={"activation_id": expired, "code": "1"}),
            409,
            "only an active activation receives SMS",
        ),
    ]
    for response, status, reason in cases:
        assert status == response.status_code, response.text
        assert reason in response.json()["error"]
    logged = [r["route"] for r in control.get("requests").json()["result"]]
    assert ["create_activation"] == logged  # control calls are not Platfone requests


def test_faults_as_a_plain_http_client_sees_them(control: httpx.Client, api: httpx.Client) -> None:
    """Drops, malformed/truncated bodies, a 429 with reset, latency and a late answer,
    injected over HTTP."""

    def fault(route: str, **spec: Any) -> None:
        body = {"route": route, "fault": spec}
        assert 200 == control.post("inject_fault", json=body).status_code

    order = {"service_id": "telegram", "country_id": "uk"}
    fault("create_activation", drop=True)
    with pytest.raises(httpx.TransportError):
        api.post("/activation", json=order)
    assert 0 == control.get("ledger").json()["result"]["orders_placed"]
    fault("create_activation", drop=True, after_processing=True)
    with pytest.raises(httpx.TransportError):
        api.post("/activation", json=order)
    assert 1 == control.get("ledger").json()["result"]["orders_placed"]

    activation_id = _order(api)
    whole = api.get(f"/activation/{activation_id}").content
    fault("get_activation", malformed=True)
    malformed = api.get(f"/activation/{activation_id}")
    fault("get_activation", truncated=True)
    truncated = api.get(f"/activation/{activation_id}")
    assert (200, 200) == (malformed.status_code, truncated.status_code)
    for broken in (malformed.content, truncated.content):
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken)
    assert whole[: len(whole) // 2] == truncated.content

    now = json.loads(whole)["created_at"]  # the virtual clock does not move by itself
    fault("get_balance", status=429, reset_in=30)
    limited = api.get("/user/balance")
    assert (429, "TooManyRequestsException") == (limited.status_code, limited.json()["errorName"])
    assert now + 30 <= int(limited.headers["x-ratelimit-reset"]) <= now + 31

    fault("get_balance", delay=5)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(api.get, "/user/balance")
        done, _ = concurrent.futures.wait([pending], timeout=0.2)
        assert set() == done  # held until the virtual clock passes 5 s
        deadline = time.monotonic() + 5
        while not pending.done():  # again if the request reached the server only now
            assert time.monotonic() < deadline, "the delayed request never completed"
            assert 200 == control.post("advance", json={"seconds": 5}).status_code
            concurrent.futures.wait([pending], timeout=0.1)
        assert 200 == pending.result().status_code

    placed = control.get("ledger").json()["result"]["orders_placed"]
    fault("create_activation", answer_delay=5)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(api.post, "/activation", json=order)
        deadline = time.monotonic() + 5
        while control.get("ledger").json()["result"]["orders_placed"] == placed:
            assert time.monotonic() < deadline, "the order was never placed"
            time.sleep(0.01)
        assert not pending.done()  # placed, its answer held until the clock passes 5 s
        while not pending.done():
            assert time.monotonic() < deadline, "the held answer never came"
            assert 200 == control.post("advance", json={"seconds": 5}).status_code
            concurrent.futures.wait([pending], timeout=0.1)
        assert 200 == pending.result().status_code


def test_serve_options(control: httpx.Client, served: Served) -> None:
    """--api-key twice, --balance, --seed, --sms-delay and --clock virtual do what they say."""
    assert (KEY_A, KEY_B) == served.api_keys
    assert served.base_url.replace("/api/v1", "/_emulator/") == served.control_url
    balances = []
    for key in served.api_keys:
        response = httpx.get(
            f"{served.base_url}/user/balance", headers={"x-api-key": key}, trust_env=False
        )
        balances.append(response.json())
    assert [{"total": 5000, "reserved": 0}] * 2 == balances
    with serve("--seed", "7", "--clock", "virtual", "--sms-delay", "5") as seven:
        url = f"{seven.base_url}/activation/prices/services/telegram/countries/uk"
        headers = {"x-api-key": seven.api_key}
        price = httpx.get(url, headers=headers, trust_env=False).json()
        ordered = httpx.post(
            f"{seven.base_url}/activation",
            json={"service_id": "telegram", "country_id": "uk"},
            headers=headers,
            trust_env=False,
        ).json()
        time.sleep(0.05)  # real time passes; virtual time does not
        seen = [
            httpx.get(
                f"{seven.base_url}/activation/{ordered['activation_id']}",
                headers=headers,
                trust_env=False,
            ).json()
        ]
        httpx.post(f"{seven.control_url}advance", json={"seconds": 5}, trust_env=False)
        seen.append(
            httpx.get(
                f"{seven.base_url}/activation/{ordered['activation_id']}",
                headers=headers,
                trust_env=False,
            ).json()
        )
    assert PlatfoneEmulator(seed=7).catalog.price_info("telegram", "uk") == price
    assert ordered["created_at"] == seen[0]["updated_at"]
    assert ["smsRequested", "smsReceived"] == [s["sms_status"] for s in seen]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_on(stop: signal.Signals) -> None:
    """The emulator serves, and the signal stops it cleanly (status 0, "stopped")."""
    with serve("--api-key", "k-1", stop=stop) as server:
        response = httpx.get(
            f"{server.base_url}/user/balance", headers={"x-api-key": "k-1"}, trust_env=False
        )
        listing = httpx.get(server.control_url, trust_env=False)
    assert 200 == response.status_code
    assert server.base_url == listing.json()["base_url"]


# -- the full flow ----------------------------------------------------------------------

SECRET = "whsec-control-flow-9a1c"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[ActivationUpdated], threading.Event]]:
    """A WebhookHandler served by uvicorn on a free loopback port: its URL, the events it
    received, and an event set when one arrives (the receiver runs in another thread)."""
    handler = WebhookHandler(SECRET)
    events: list[ActivationUpdated] = []
    arrived = threading.Event()

    @handler.on("activation.updated")
    async def received(event: ActivationUpdated) -> None:
        events.append(event)
        arrived.set()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(handler.asgi_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/hooks/", events, arrived
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.mark.anyio
async def test_full_flow_order_deliver_by_control_webhook_then_code(
    receiver: tuple[str, list[ActivationUpdated], threading.Event],
) -> None:
    """SDK order, SMS by control API, signed webhook to a receiver, SDK reads the code."""
    url, events, arrived = receiver
    options = ["--sms-delay", "-1", "--webhook-url", url, "--webhook-secret", SECRET]
    with serve(*options) as server:
        async with (
            AsyncPlatfone(server.api_key, base_url=server.base_url, max_retries=0) as client,
            httpx.AsyncClient(base_url=server.control_url, trust_env=False) as control,
        ):
            activation = await client.create_activation("telegram", "uk")
            body = {"activation_id": activation.activation_id, "code": "271828"}
            assert 200 == (await control.post("deliver_sms", json=body)).status_code
            assert await anyio.to_thread.run_sync(arrived.wait, 5), "no webhook arrived"
            got = await client.wait_for_sms(activation, timeout=5)
    assert [(activation.activation_id, "271828")] == [
        (e.data.activation_id, e.data.sms_code) for e in events
    ]
    assert "271828" == got.sms_code
