import pytest

from otelzmq import protocol
from otelzmq.exceptions import ProtocolError


def test_request_round_trip() -> None:
    frames = protocol.encode_request(b"ctx", 1001)
    assert frames == [b"ctx", b"1001"]
    assert protocol.decode_request(frames, maximum=10_000) == (b"ctx", 1001)


@pytest.mark.parametrize(
    ("nth", "message"),
    [
        (b"", "empty"),
        (b"abc", "decimal integer"),
        (b"1.5", "decimal integer"),
        (b"0", "at least 1"),
        (b"-3", "at least 1"),
        (b"10001", "at most 10000"),
        (b"9" * 40, "too long"),
        (b"\xff\xfe", "decimal integer"),
    ],
)
def test_bad_nth_is_refused_with_a_reason(nth: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.decode_request([b"", nth], maximum=10_000)


@pytest.mark.parametrize("frames", [[], [b"1"], [b"", b"1", b"extra"]])
def test_wrong_frame_count_is_refused(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError, match="2 frames"):
        protocol.decode_request(frames, maximum=10)


def test_reply_round_trip() -> None:
    reply = protocol.decode_reply(protocol.encode_reply(b"c", 7927))
    assert reply.ok
    assert (reply.context, reply.prime, reply.error) == (b"c", 7927, None)


def test_error_reply_round_trip() -> None:
    reply = protocol.decode_reply(protocol.encode_error(b"", "nth must be ..."))
    assert not reply.ok
    assert reply.prime is None
    assert reply.error == "nth must be ..."


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([b"", b"OK"], "3 frames"),
        ([b"", b"MAYBE", b"1"], "unknown reply status"),
        ([b"", b"OK", b"seven"], "not an integer"),
    ],
)
def test_malformed_replies_are_reported(frames: list[bytes], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.decode_reply(frames)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (111, "111th"),
        (1001, "1001st"),
        (2002, "2002nd"),
        (9003, "9003rd"),
    ],
)
def test_ordinals(n: int, text: str) -> None:
    assert protocol.ordinal(n) == text
