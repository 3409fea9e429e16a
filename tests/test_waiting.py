"""The shared wait (``redu_mcp.provisioning.waiting``) on its own: the single-flight board, and what
each waiter concludes from a snapshot it shares with others.

These run the board and ``wait_until_ready`` directly, with a fetch function standing in for the API,
so the subtle cases (a fetch cancelled mid-flight, two waiters sharing one failed poll) can be set up
exactly. The end-to-end behaviour through MCP clients is covered in ``test_tools`` and ``test_fault_matrix``.
"""

from __future__ import annotations

import anyio
import pytest

from redu_mcp.api import DATABASE, Database, RateLimitedError, ReduError, within
from redu_mcp.provisioning.waiting import Poll, StatusBoard, wait_until_ready
from redu_mcp.server import wording
from tests.helpers import until


def instance(status: str = "provisioning") -> Database:
    return Database(id=7, name="orders", status=status)


class Fetches:
    """A stand-in for ``GET /v1/databases/7``: answers from a script, counts calls, can be held."""

    def __init__(self, *answers: Database | ReduError) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.release = anyio.Event()
        self.hold = False

    async def __call__(self) -> Database:
        self.calls += 1
        if self.hold:
            await self.release.wait()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, ReduError):
            raise answer
        return answer


async def no_progress(poll: Poll) -> None:
    return None


async def test_concurrent_readers_share_one_fetch():
    board, fetch = StatusBoard(), Fetches(instance())
    fetch.hold = True
    seen: list[str] = []

    async def read() -> None:
        snapshot = await board.read("key", fetch, max_age=10)
        assert snapshot.instance is not None
        seen.append(snapshot.instance.status)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(read)
        await anyio.sleep(0.01)
        fetch.release.set()
    assert fetch.calls == 1 and seen == ["provisioning"] * 50


async def test_a_fresh_snapshot_is_reused_and_a_stale_one_refetched():
    now = [100.0]
    board, fetch = StatusBoard(clock=lambda: now[0]), Fetches(instance("provisioning"), instance("ready"))
    first = await board.read("key", fetch, max_age=5)
    now[0] += 4
    assert await board.read("key", fetch, max_age=5) is first and fetch.calls == 1
    now[0] += 2
    second = await board.read("key", fetch, max_age=5)
    assert fetch.calls == 2 and second.instance is not None and second.instance.status == "ready"


async def test_a_reader_waiting_on_a_cancelled_fetch_fetches_itself():
    """The fetcher is cancelled mid-flight (its client went away): a reader that was sharing its
    answer must not get nothing, nor the old snapshot; it fetches again itself."""
    board, fetch = StatusBoard(), Fetches(instance("ready"))
    fetch.hold = True
    results: list[str] = []

    async def follower() -> None:
        snapshot = await board.read("key", fetch, max_age=10)
        assert snapshot.instance is not None
        results.append(snapshot.instance.status)

    async with anyio.create_task_group() as outer:
        with anyio.CancelScope() as leader_scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(board.read, "key", fetch, 10)  # the leader: it starts the fetch
                await anyio.sleep(0.01)
                outer.start_soon(follower)  # joins the leader's flight
                await anyio.sleep(0.01)
                leader_scope.cancel()  # the leader goes away mid-fetch
        fetch.release.set()  # from now on fetches answer (the leader's was cancelled before)
    assert results == ["ready"]
    assert fetch.calls == 2  # the cancelled fetch, then the follower's own


async def test_the_board_forgets_an_instance_when_its_last_waiter_leaves():
    board, fetch = StatusBoard(), Fetches(instance("ready"))
    with within(5):
        outcome = await wait_until_ready(board, "key", fetch, interval=0.01, on_poll=no_progress)
    assert outcome.ready and outcome.polls == 1
    assert not board._entries


async def test_two_waiters_sharing_one_failed_poll_each_get_their_own_wording():
    """One poll answers 429 with Retry-After 30 s. A waiter with 60 s left waits it out and polls
    again; a waiter with 2 s left cannot, and is told so with its own budget. The shared error
    itself is never changed, so neither waiter's wording leaks into the other's."""
    throttled = RateLimitedError("slow down", endpoint="GET /databases/7", status=429, retry_after=30)
    board = StatusBoard()
    fetch = Fetches(throttled, instance("ready"))
    outcomes = {}

    async def wait(name: str, seconds: float) -> None:
        with within(seconds):
            outcomes[name] = await wait_until_ready(board, "key", fetch, interval=0.01, on_poll=no_progress)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "patient", 60)
        tg.start_soon(wait, "hurried", 2)
        await until(lambda: "hurried" in outcomes, "the hurried waiter to end")
        tg.cancel_scope.cancel()  # the patient one would wait 30 s: its end is not this test's point

    hurried = outcomes["hurried"]
    assert hurried.end == "retry_after_too_long" and hurried.error is not None
    text = wording.Wording(offered=frozenset()).wait_failure(DATABASE, 7, hurried, timeout=2)
    assert text is not None
    assert "it asks to wait 30 s before retrying, longer than the 2 s this call had left" in text
    assert "Call the same tool again in 30 s" in text
    assert fetch.calls == 1  # both read the same poll
    # The shared snapshot still holds the error exactly as the API gave it.
    assert throttled.retry is None and throttled.message == "slow down"
    assert "this call had left" not in wording.describe(throttled)


async def test_the_wait_ends_by_the_callers_deadline_with_what_it_knows():
    board, fetch = StatusBoard(), Fetches(instance("provisioning"))
    with within(0.3):
        outcome = await wait_until_ready(board, "key", fetch, interval=0.05, on_poll=no_progress)
    assert outcome.end == "deadline" and outcome.status == "provisioning" and outcome.polls >= 2


@pytest.mark.parametrize("status, end", [("ready", "ready"), ("error", "failed")])
async def test_terminal_statuses_end_the_wait(status: str, end: str):
    with within(5):
        outcome = await wait_until_ready(
            StatusBoard(), "k", Fetches(instance(status)), interval=0.01, on_poll=no_progress
        )
    assert outcome.end == end and outcome.instance is not None and outcome.instance.status == status
