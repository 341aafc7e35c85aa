"""kbus.Message and friends on their own: construction, the entire form,
kinds, and the helpers that make replies and stateful requests."""

import struct

import pytest

from kbus import (MSG_HEADER_LEN, Announcement, Message, MessageId, OrigFrom, Reply, Request,
                  Status, calc_entire_message_len, reply_to, split_replier_bind_event_data,
                  stateful_request)


def test_ids_compare_and_add():
    assert MessageId(1, 2) < MessageId(2, 0) and MessageId(1, 2) < MessageId(1, 3)
    assert MessageId(1, 2) == MessageId(1, 2) and MessageId(1, 2) != MessageId(1, 3)
    assert MessageId(0, 5) + 3 == MessageId(0, 8)
    assert repr(MessageId(0, 7)) == "MessageId(0, 7)" and str(MessageId(0, 7)) == "[0:7]"
    assert len({MessageId(0, 1), MessageId(0, 1), MessageId(0, 2)}) == 2
    assert OrigFrom(1, 2) < OrigFrom(1, 3) and repr(OrigFrom(3, 4)) == "OrigFrom(3, 4)"


def test_message_fields():
    msg = Message("$.Fred", data="1234", to=9, in_reply_to=MessageId(0, 3),
                  orig_from=OrigFrom(1, 2))
    assert repr(msg) == ("Message('$.Fred', data=b'1234', to=9, orig_from=OrigFrom(1, 2), "
                         "in_reply_to=MessageId(0, 3))")
    assert msg.id is None and msg.from_ == 0 and msg.final_to is None and msg.flags == 0
    assert msg.extract() == (None, MessageId(0, 3), 9, 0, OrigFrom(1, 2), None, 0, "$.Fred",
                             b"1234")
    assert Message("$.Empty").data is None
    with pytest.raises(ValueError):
        Message("Fred")


def test_entire_form_round_trip():
    msg = Message("$.Fred", data=b"abc1234", flags=0x10000)
    raw = msg.to_bytes()
    # KBUS's layout: 88-byte header, name NUL-padded to 8, data padded to 8, guard.
    assert MSG_HEADER_LEN == 88 and len(raw) == calc_entire_message_len(6, 7) == 108
    assert struct.unpack_from("=I", raw)[0] == Message.START_GUARD
    assert raw[88:96] == b"$.Fred\0\0" and raw[96:103] == b"abc1234"
    assert struct.unpack_from("=I", raw, 104)[0] == Message.END_GUARD
    assert Message.from_bytes(raw) == msg
    with pytest.raises(ValueError):
        Message.from_bytes(raw[:20])
    with pytest.raises(ValueError):
        Message.from_bytes(b"1234" + raw)


def test_copies_and_sequences():
    msg = Message("$.Fred", data=b"1234")
    assert Message.from_message(msg) == msg
    assert Message.from_sequence(msg.extract()) == msg
    changed = Message.from_message(msg, to=9)
    assert changed.to == 9 and changed.name == "$.Fred" and changed != msg
    assert changed.equivalent(Message("$.Fred", data=b"1234", to=9, from_=4))


def test_kinds_and_cast():
    announcement = Announcement("$.A", data="x")
    request = Request("$.R")
    assert request.is_request() and not announcement.is_request()
    assert repr(request) == "Request('$.R', flags=0x00000001)"
    assert Request("$.R", to=5).is_stateful_request()
    with pytest.raises(ValueError):
        Reply("$.R")
    with pytest.raises(NotImplementedError):
        Status("$.KBUS.Replier.GoneAway")
    status = Message("$.KBUS.Replier.GoneAway", in_reply_to=MessageId(0, 1),
                     flags=Message.SYNTHETIC).cast()
    assert isinstance(status, Status) and status.is_synthetic()
    assert isinstance(Message("$.R", in_reply_to=MessageId(0, 1)).cast(), Reply)
    assert isinstance(Message("$.R", flags=Message.WANT_A_REPLY).cast(), Request)
    assert isinstance(Message("$.A").cast(), Announcement)
    urgent = Announcement("$.A")
    urgent.set_urgent()
    assert urgent.is_urgent() and urgent.flags == Message.URGENT
    urgent.set_urgent(False)
    assert not urgent.is_urgent()


def test_reply_to_and_stateful_request():
    request = Message("$.Fred", data=b"1234", from_=27, to=99, id=MessageId(0, 132),
                      flags=Message.WANT_A_REPLY | Message.WANT_YOU_TO_REPLY)
    reply = reply_to(request, data="answer", flags=Message.ALL_OR_WAIT)
    assert isinstance(reply, Reply)
    assert (reply.to, reply.in_reply_to, reply.name, reply.data, reply.flags) == (
        27, MessageId(0, 132), "$.Fred", b"answer", Message.ALL_OR_WAIT)
    with pytest.raises(ValueError):
        reply_to(Message("$.Fred", flags=Message.WANT_A_REPLY))
    far = Reply("$.Fred", to=27, from_=39, in_reply_to=MessageId(0, 132),
                orig_from=OrigFrom(19, 23))
    follow = stateful_request(far, "$.Next")
    assert (follow.to, follow.final_to, follow.is_request()) == (39, OrigFrom(19, 23), True)
    again = stateful_request(follow, "$.Again", data="more")
    assert (again.to, again.final_to, again.data) == (39, OrigFrom(19, 23), b"more")
    with pytest.raises(ValueError):
        stateful_request(Announcement("$.A"), "$.B")


def test_replier_bind_event_data():
    data = struct.pack("=III", 1, 42, 5) + b"$.Abc\0\0\0"
    assert split_replier_bind_event_data(data) == (1, 42, "$.Abc")
    with pytest.raises(ValueError):
        split_replier_bind_event_data(struct.pack("=III", 1, 42, 50) + b"$.Abc")
