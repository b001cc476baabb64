import json

import pytest
from opentelemetry import baggage, trace
from opentelemetry.propagate import get_global_textmap, set_global_textmap
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider

from otelzmq.propagation import MAX_CONTEXT_BYTES, extract_context, inject_context

tracer = TracerProvider().get_tracer(__name__)


def test_round_trip_continues_the_trace() -> None:
    with tracer.start_as_current_span("sender") as sender:
        frame = inject_context()

    with tracer.start_as_current_span(
        "receiver", context=extract_context(frame)
    ) as receiver:
        pass

    sent = sender.get_span_context()
    assert receiver.get_span_context().trace_id == sent.trace_id
    assert receiver.parent is not None
    assert receiver.parent.span_id == sent.span_id
    assert receiver.parent.is_remote


def test_frame_is_json_with_a_w3c_traceparent() -> None:
    with tracer.start_as_current_span("sender") as span:
        frame = inject_context()
    headers = json.loads(frame)
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert headers["traceparent"].split("-")[1] == trace_id


def test_baggage_travels_too() -> None:
    context = baggage.set_baggage("tenant", "lab 3")
    frame = inject_context(context)
    assert baggage.get_baggage("tenant", extract_context(frame)) == "lab 3"


def test_no_active_span_gives_an_empty_frame() -> None:
    assert inject_context() == b""


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"not json",
        b"\xff\xfe\xfd",
        b"[1, 2, 3]",
        b'{"traceparent": 42}',
        b'{"traceparent": "00-zz-yy-01"}',
        b'{"traceparent": "' + b"0" * MAX_CONTEXT_BYTES + b'"}',
    ],
)
def test_missing_or_malformed_frames_start_a_new_trace(frame: bytes) -> None:
    with tracer.start_as_current_span(
        "receiver", context=extract_context(frame)
    ) as span:
        pass
    assert span.parent is None


class _FailingPropagator(TextMapPropagator):
    def extract(self, carrier, context=None, getter=None):
        raise RuntimeError("broken propagator")

    def inject(self, carrier, context=None, setter=None):
        carrier["x-custom"] = "yes"

    @property
    def fields(self):
        return {"x-custom"}


@pytest.fixture
def failing_propagator():
    previous = get_global_textmap()
    set_global_textmap(_FailingPropagator())
    try:
        yield
    finally:
        set_global_textmap(previous)


def test_the_global_propagator_is_used(failing_propagator) -> None:
    assert json.loads(inject_context()) == {"x-custom": "yes"}


def test_a_failing_propagator_never_raises(failing_propagator) -> None:
    context = extract_context(b'{"x-custom": "yes"}')
    assert trace.get_current_span(context) is trace.INVALID_SPAN
