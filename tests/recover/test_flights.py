"""Matching the orders a dead process had in flight to the numbers in the activation
history (``look_at_flights``, a pure function): what is taken, what is left to a later
look, what is named in a WARNING instead of guessed."""

from __future__ import annotations

from platfone_async import Activation
from platfone_async._convert import converter
from platfone_async._ratelimit import Flight
from platfone_async._recover import FLIGHT_REACH, FlightLook, look_at_flights
from tests._support import ACTIVATION

LEFT = 1_800_000_000.0  # when the first orphaned order left (Unix seconds)
SKEW = 5.0
LATER = LEFT + FLIGHT_REACH + SKEW + 1  # a read that began after its window closed


def number(aid: str, created: float, *, service: str = "netflix", price: int = 20) -> Activation:
    """A number of the history (netflix/us at 20 cents unless told), created then."""
    data = {**ACTIVATION, "activation_id": aid, "service_id": service, "price": price}
    return converter.structure({**data, "created_at": int(created)}, Activation)


def orphan(name: str = "f1", offer: str = "netflix|us|", left: float = LEFT) -> Flight:
    return Flight(name, offer, left, "dead", False)


def live(offer: str = "netflix|us|", left: float = LEFT) -> Flight:
    return Flight("live-1", offer, left, "alive", True)


def look(
    flights: list[Flight],
    history: list[Activation],
    held: set[str] | None = None,
    read_at: float = LEFT + 10,
    reaches: float = float("-inf"),
) -> FlightLook:
    return look_at_flights(
        flights, history, held or set(), skew=SKEW, read_at=read_at, reaches=reaches
    )


def taken(result: FlightLook) -> list[tuple[str, str]]:
    return [(f.name, a.activation_id) for f, a in result.taken]


def test_the_one_number_created_after_the_order_left_is_the_orders() -> None:
    """One number of the offer created in the window (a second after the order left, or
    a few seconds before it by the other clock): it is the flight's."""
    for created in (LEFT + 1, LEFT - SKEW + 1):
        assert [("f1", "a1")] == taken(look([orphan()], [number("a1", created)]))


def test_numbers_outside_the_window_or_of_another_offer_are_no_candidates() -> None:
    """Created before the order left (beyond the skew) or after its reach, another
    service, above its max price: no candidates; the flight waits while its window is
    open and placed nothing once a read began after it closed."""
    history = [
        number("before", LEFT - SKEW - 2),
        number("after", LEFT + FLIGHT_REACH + SKEW + 1),
        number("other", LEFT + 1, service="tinder"),
        number("dear", LEFT + 1, price=30),
    ]
    flight = orphan(offer="netflix|us|25")
    assert FlightLook() == look([flight], history)
    assert FlightLook(placed_nothing=(flight,)) == look([flight], history, read_at=LATER)


def test_a_number_a_live_process_holds_is_never_taken() -> None:
    """A number journaled or claimed by a live process is no candidate; the flight, its
    window closed, placed nothing of its own."""
    flight = orphan()
    result = look([flight], [number("theirs", LEFT + 1)], held={"theirs"}, read_at=LATER)
    assert FlightLook(placed_nothing=(flight,)) == result


def test_a_live_order_in_flight_that_may_own_a_candidate_makes_it_wait() -> None:
    """A live process's order of the same offer, in flight since before the candidate was
    created, may be its owner: nothing is judged. One of another offer, or one that left
    after the candidate was created, changes nothing."""
    history = [number("a1", LEFT + 1)]
    assert FlightLook(waiting=True) == look([orphan(), live(left=LEFT)], history)
    for other in (live(offer="tinder|us|"), live(left=LEFT + 1 + SKEW + 1)):
        assert [("f1", "a1")] == taken(look([orphan(), other], history))


def test_two_candidates_for_one_flight_are_named_not_guessed() -> None:
    """Two numbers in one flight's window: one is someone else's, and which cannot be
    told: both are named as ambiguous, none taken, the flight not dropped."""
    flight = orphan()
    history = [number("a1", LEFT + 1), number("a2", LEFT + 3)]
    result = look([flight], history, read_at=LATER)
    assert ((), False, ()) == (result.taken, result.waiting, result.placed_nothing)
    assert [((flight,), ("a1", "a2"))] == [
        (flights, tuple(a.activation_id for a in numbers)) for flights, numbers in result.ambiguous
    ]


def test_two_flights_explain_two_numbers_each_its_own() -> None:
    """Two orphaned orders of one offer and two numbers: both taken, each by one flight;
    a third flight with nothing left for it placed nothing once its window closed."""
    flights = [orphan("f1", left=LEFT), orphan("f2", left=LEFT + 2), orphan("f3", left=LEFT)]
    history = [number("a2", LEFT + 3), number("a1", LEFT + 1)]
    result = look(flights, history, read_at=LATER + 2)
    assert {"a1", "a2"} == {a for _, a in taken(result)}
    assert 2 == len({f for f, _ in taken(result)})
    assert 1 == len(result.placed_nothing)
    assert {"f1", "f2", "f3"} == {f for f, _ in taken(result)} | {
        f.name for f in result.placed_nothing
    }


def test_flights_of_another_offer_are_judged_apart() -> None:
    """An ambiguity for one service leaves another service's flight to be taken."""
    netflix, tinder = orphan("n"), orphan("t", offer="tinder|us|")
    history = [
        number("n1", LEFT + 1),
        number("n2", LEFT + 2),
        number("t1", LEFT + 1, service="tinder"),
    ]
    result = look([netflix, tinder], history)
    assert ([("t", "t1")], 1) == (taken(result), len(result.ambiguous))


def test_a_history_read_that_did_not_reach_the_window_judges_nothing() -> None:
    """When the pages read stop after the window's start, a number may be missing: the
    flight is neither matched nor dropped."""
    result = look([orphan()], [number("a1", LEFT + 1)], read_at=LATER, reaches=LEFT)
    assert FlightLook() == result


def test_live_flights_alone_are_not_looked_at() -> None:
    """Without a lapsed owner's flight there is nothing to judge."""
    assert FlightLook() == look([live()], [number("a1", LEFT + 1)], read_at=LATER)
