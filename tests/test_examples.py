import json
import re
import subprocess
import sys

from tests.conftest import REPO


def test_traced_pair_example_continues_the_trace() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "traced_pair.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # ConsoleSpanExporter prints one JSON object per span.
    spans = [
        json.loads(m) for m in re.findall(r"^\{.*?^\}", result.stdout, re.S | re.M)
    ]
    by_name = {span["name"]: span for span in spans}

    sent, processed = by_name["send job"], by_name["process job"]
    assert processed["context"]["trace_id"] == sent["context"]["trace_id"]
    assert processed["parent_id"] == sent["context"]["span_id"]
    assert processed["attributes"]["job"] == "resize photo 42"
