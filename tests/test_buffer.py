"""Properties of ``pdcore.TokenBuffer``: token accounting across the cloud-to-device hand-off.

A hypothesis state machine drives random interleavings of every call against a small model and checks
after each step that no token is lost or duplicated, positions are displayed once each in order from
the source that owns them, and protocol errors raise the documented exception types.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import pdcore


class BufferMachine(RuleBasedStateMachine):
    """Drives a TokenBuffer and an independent model of it through random call sequences."""

    def __init__(self) -> None:
        super().__init__()
        self.buf = pdcore.TokenBuffer()
        self.expected: int | None = None
        self.stream = "open"
        self.received = 0
        self.prompt = False
        self.prefilled = 0
        self.handoff: int | None = None
        self.discarded = 0
        self.kept: list[int] = []
        self.generated: list[int] = []
        self.shown: list[tuple[int, str]] = []

    @initialize(expected=st.one_of(st.none(), st.integers(0, 12)))
    def start(self, expected: int | None) -> None:
        self.buf = pdcore.TokenBuffer(cloud_expected=expected)
        self.expected = expected
        self.stream = "finished" if expected == 0 else "open"

    # --- the cloud ---

    @rule()
    def receive_cloud(self) -> None:
        if self.stream in ("finished", "cut"):
            with pytest.raises(pdcore.InvalidStateError, match=r"^receive_cloud: the cloud stream is"):
                self.buf.receive_cloud()
            return
        pos = self.buf.receive_cloud()
        if self.stream == "cancelled":
            assert pos is None
            self.discarded += 1
            return
        assert pos == self.received
        self.kept.append(pos)
        self.received += 1
        if self.received == self.expected:
            self.stream = "finished"

    @rule()
    def cut_cloud(self) -> None:
        self.buf.cut_cloud()
        if self.stream == "open":
            self.stream = "cut"

    # --- the device ---

    @rule()
    def prefill_prompt(self) -> None:
        self.buf.prefill_prompt()
        self.prompt = True

    @rule(data=st.data())
    def prefill_received(self, data: st.DataObject) -> None:
        n = data.draw(st.integers(0, self.received - self.prefilled + 2), label="n")
        if not self.prompt:
            with pytest.raises(pdcore.InvalidStateError, match="the prompt is not prefilled"):
                self.buf.prefill_received(n)
        elif self.prefilled + n > self.received:
            with pytest.raises(pdcore.InvalidInputError, match=rf"^n = {n} would prefill past"):
                self.buf.prefill_received(n)
        else:
            self.buf.prefill_received(n)
            self.prefilled += n

    @rule()
    def prefill_everything_received(self) -> None:
        if not self.prompt:
            self.prefill_prompt()
        self.buf.prefill_received(self.received - self.prefilled)
        self.prefilled = self.received

    @rule()
    def take_over(self) -> None:
        caught_up = self.handoff is None and self.prompt and self.prefilled == self.received
        assert self.buf.caught_up == caught_up
        if not caught_up:
            with pytest.raises(pdcore.InvalidStateError, match=r"^take_over: the device has not caught up"):
                self.buf.take_over()
            return
        assert self.buf.take_over() == self.received
        self.handoff = self.received
        if self.stream == "open":
            self.stream = "cancelled"

    @rule()
    def generate(self) -> None:
        if self.handoff is None:
            with pytest.raises(pdcore.InvalidStateError, match=r"^generate: the device has not taken over"):
                self.buf.generate()
            return
        pos = self.buf.generate()
        assert pos == self.handoff + len(self.generated)
        self.generated.append(pos)

    @rule()
    def display(self) -> None:
        available = self.received if self.handoff is None else self.handoff + len(self.generated)
        if len(self.shown) >= available:
            with pytest.raises(pdcore.InvalidStateError, match=r"^display: nothing to display"):
                self.buf.display()
            return
        self.shown.append(self.buf.display())

    # --- after every step ---

    @invariant()
    def counts_match_the_model(self) -> None:
        b = self.buf
        assert (b.received, b.prefilled, b.prompt_prefilled) == (self.received, self.prefilled, self.prompt)
        assert (b.handoff, b.generated, b.discarded) == (self.handoff, len(self.generated), self.discarded)
        assert (b.displayed, b.stream) == (len(self.shown), self.stream)
        assert b.prefilled <= b.received
        assert b.displayed <= b.available
        if self.expected is not None:
            assert b.received <= self.expected

    @invariant()
    def no_token_lost_or_duplicated(self) -> None:
        # kept cloud positions and device positions together are exactly 0..total-1, each once
        positions = sorted(self.kept + self.generated)
        assert positions == list(range(len(positions)))
        # the cloud's positions all come before the hand-off, the device's from it on
        if self.handoff is not None:
            assert self.kept == list(range(self.handoff))
            assert all(p >= self.handoff for p in self.generated)
        assert self.buf.available == len(positions)

    @invariant()
    def displayed_positions_are_0_to_n_once_each_from_their_owner(self) -> None:
        assert [p for p, _ in self.shown] == list(range(len(self.shown)))
        for p, source in self.shown:
            from_cloud = self.handoff is None or p < self.handoff
            assert source == ("cloud" if from_cloud else "device"), (p, source, self.handoff)


TestBufferMachine = BufferMachine.TestCase
TestBufferMachine.settings = settings(stateful_step_count=60)


# --- examples of each rule ------------------------------------------------------------------------


def test_cloud_then_device_positions_are_contiguous() -> None:
    b = pdcore.TokenBuffer(cloud_expected=3)
    assert [b.receive_cloud(), b.receive_cloud()] == [0, 1]
    b.prefill_prompt()
    b.prefill_received(2)
    assert b.caught_up
    assert b.take_over() == 2
    assert b.stream == "cancelled"
    assert b.receive_cloud() is None
    assert b.generate() == 2
    assert b.available == 3
    assert [b.display() for _ in range(3)] == [(0, "cloud"), (1, "cloud"), (2, "device")]
    assert b.discarded == 1
    with pytest.raises(pdcore.InvalidStateError):
        b.display()


@given(st.integers(0, 30), st.integers(1, 30), st.integers(0, 30))
def test_a_cut_stream_keeps_what_was_received_and_the_device_continues(
    received: int, extra: int, generated: int
) -> None:
    b = pdcore.TokenBuffer(cloud_expected=received + extra)
    for _ in range(received):
        b.receive_cloud()
    b.cut_cloud()
    assert b.stream == "cut"
    assert b.received == received
    with pytest.raises(pdcore.InvalidStateError, match="stream is Cut"):
        b.receive_cloud()
    b.prefill_prompt()
    b.prefill_received(received)
    assert b.take_over() == received
    assert b.stream == "cut"
    assert [b.generate() for _ in range(generated)] == list(range(received, received + generated))
    shown = [b.display() for _ in range(received + generated)]
    assert shown == [(p, "cloud" if p < received else "device") for p in range(received + generated)]


@given(st.integers(0, 20), st.integers(1, 20), st.integers(0, 50))
def test_cloud_tokens_after_the_take_over_are_discarded_and_counted(
    received: int, extra: int, late: int
) -> None:
    b = pdcore.TokenBuffer(cloud_expected=received + extra)
    for _ in range(received):
        b.receive_cloud()
    b.prefill_prompt()
    b.prefill_received(received)
    b.take_over()
    assert [b.receive_cloud() for _ in range(late)] == [None] * late
    assert (b.received, b.discarded, b.available) == (received, late, received)


def test_a_finished_stream_refuses_more_tokens() -> None:
    b = pdcore.TokenBuffer(cloud_expected=1)
    assert b.receive_cloud() == 0
    assert b.stream == "finished"
    with pytest.raises(pdcore.InvalidStateError, match="stream is Finished after 1 tokens"):
        b.receive_cloud()
    assert pdcore.TokenBuffer(cloud_expected=0).stream == "finished"
    assert pdcore.TokenBuffer().stream == "open"


def test_protocol_errors_are_state_errors_and_runtime_errors() -> None:
    b = pdcore.TokenBuffer(cloud_expected=4)
    calls = [b.generate, lambda: b.prefill_received(0), b.display]
    for call in calls:
        with pytest.raises(pdcore.InvalidStateError) as info:
            call()
        assert isinstance(info.value, RuntimeError)
        assert isinstance(info.value, pdcore.PdcoreError)
    b.receive_cloud()
    with pytest.raises(RuntimeError, match="has not caught up"):
        b.take_over()
    b.prefill_prompt()
    with pytest.raises(pdcore.InvalidStateError, match="has not caught up"):
        b.take_over()
    b.prefill_received(1)
    b.take_over()
    with pytest.raises(pdcore.InvalidStateError, match="has not caught up"):
        b.take_over()


def test_prefilling_past_the_received_tokens_is_an_input_error() -> None:
    b = pdcore.TokenBuffer()
    b.receive_cloud()
    b.prefill_prompt()
    with pytest.raises(pdcore.InvalidInputError, match=r"^n = 2 would prefill past the 1 received") as info:
        b.prefill_received(2)
    assert isinstance(info.value, ValueError)
    assert b.prefilled == 0


def test_repr_shows_the_counts() -> None:
    b = pdcore.TokenBuffer(cloud_expected=2)
    b.receive_cloud()
    assert repr(b) == (
        "TokenBuffer(received=1, prefilled=0, handoff=None, generated=0, displayed=0, stream='open')"
    )
