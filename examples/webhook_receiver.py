"""A Starlette app that receives Platfone's webhooks and wakes the code waiting for an SMS.

Against the real API (``PLATFONE_API_KEY`` and ``PLATFONE_WEBHOOK_SECRET`` set), serve it
and register ``https://your.host/platfone/webhooks/`` in the dashboard:

    uvicorn webhook_receiver:app --app-dir examples --port 8000
    curl -X POST http://127.0.0.1:8000/signups/telegram/uk    # orders a real number

Offline, ``python examples/webhook_receiver.py`` runs the same app in-process against the
embedded emulator, which signs and posts its webhooks to it: the SMS arrives 90 s after the
order (virtual time), and the wait, polling every 10 minutes, ends at once.
FastAPI works the same way: ``app.mount("/platfone/webhooks", handler.asgi_app())``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import anyio
from _connect import connect, emulated
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from platfone_async import AsyncPlatfone, WaitTimeoutError
from platfone_async.testing import PlatfoneEmulator, SmsPolicy, VirtualClock
from platfone_async.webhooks import ActivationUpdated, WebhookHandler

# With webhooks flowing the watch still polls, as a fallback, but only this often.
FALLBACK_POLL = 600.0


def build_app(client: AsyncPlatfone, secret: str) -> Starlette:
    """The receiver (``/platfone/webhooks/``) and a route that waits for an SMS."""
    handler = WebhookHandler(secret, client=client)  # client: whose watchers wake up

    @handler.on("activation.updated")
    async def sms_arrived(event: ActivationUpdated) -> None:
        print(f"webhook: {event.data.activation_id} got {event.data.sms_code}")

    async def signup(request: Request) -> JSONResponse:
        service, country = request.path_params["service"], request.path_params["country"]
        async with client.activation(service, country) as session:
            try:
                activation = await session.wait_for_sms(timeout=900, interval=FALLBACK_POLL)
            except WaitTimeoutError:
                return JSONResponse({"phone": session.activation.phone, "code": None})
        return JSONResponse({"phone": activation.phone, "code": activation.sms_code})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with client:
            yield

    return Starlette(
        routes=[
            Mount("/platfone/webhooks", handler.asgi_app()),
            Route("/signups/{service}/{country}", signup, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


async def offline() -> None:
    """The app against the emulator: it posts signed webhooks to the app in-process."""
    clock = VirtualClock()
    emulator = PlatfoneEmulator(clock=clock, sms_policy=SmsPolicy(delay=90))
    async with connect(emulator) as client:
        app = build_app(client, secret="whsec-example")
        emulator.configure_webhooks(
            "http://receiver.test/platfone/webhooks/", app=app, secret="whsec-example"
        )
        started = clock.time()
        async with emulator.webhooks.running(), anyio.create_task_group() as tg:
            tg.start_soon(tick_every_second, emulator, clock)
            response = await signup_through(app)
            tg.cancel_scope.cancel()
        print(f"answer after {clock.time() - started:.0f} s: {response}")


async def tick_every_second(emulator: PlatfoneEmulator, clock: VirtualClock) -> None:
    """An in-process emulator applies due SMS when a request or a tick comes (served, it
    ticks by itself): without this the SMS would only land with the next poll."""
    while True:
        await clock.sleep(1)
        emulator.tick()


async def signup_through(app: Starlette) -> object:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver.test") as http:
        response = await http.post("/signups/telegram/uk")
        return response.json()


# For uvicorn (webhook_receiver:app); offline, the app is built around the emulator's client.
app = None if emulated() else build_app(AsyncPlatfone(), os.environ["PLATFONE_WEBHOOK_SECRET"])

if __name__ == "__main__":
    if emulated():
        anyio.run(offline)
    else:
        print("serve it: uvicorn webhook_receiver:app --app-dir examples --port 8000")
