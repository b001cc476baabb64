"""Carry a trace across your own pyzmq sockets with otelzmq.propagation.

    python examples/traced_pair.py

A PUSH socket sends a job with its trace context in the first frame; a PULL
socket in another thread continues the trace. Both spans print on standard
output, with the same trace id and the consumer's parent being the
producer.
"""

from __future__ import annotations

import threading

import zmq
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from otelzmq.propagation import extract_context, inject_context

ENDPOINT = "inproc://jobs"


def consume(context: zmq.Context, ready: threading.Event) -> None:
    tracer = trace.get_tracer("example.consumer")
    with context.socket(zmq.PULL) as pull:
        pull.bind(ENDPOINT)
        ready.set()
        context_frame, job = pull.recv_multipart()
        with tracer.start_as_current_span(
            "process job",
            context=extract_context(context_frame),
            kind=trace.SpanKind.CONSUMER,
        ) as span:
            span.set_attribute("job", job.decode())


def main() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("example.producer")

    context = zmq.Context()
    ready = threading.Event()
    consumer = threading.Thread(target=consume, args=(context, ready))
    consumer.start()
    ready.wait()

    with context.socket(zmq.PUSH) as push:
        push.connect(ENDPOINT)
        with tracer.start_as_current_span("send job", kind=trace.SpanKind.PRODUCER):
            push.send_multipart([inject_context(), b"resize photo 42"])
        consumer.join()
    context.term()
    provider.shutdown()


if __name__ == "__main__":
    main()
