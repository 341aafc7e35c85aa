"""The kbus package against a real xkbusd: KBUS's behaviour as its Python
programs see it, over the same ground as the C API tests."""

import errno
import select

import pytest

from kbus import (Announcement, Ksock, Message, MessageId, Reply, Request, Status, read_bindings,
                  reply_to, split_replier_bind_event_data, stateful_request)


def names_of(ksock):
    return [m.name for m in ksock]


def raises_errno(expected, call, *args):
    with pytest.raises(OSError) as caught:
        call(*args)
    assert caught.value.errno == expected, caught.value
    return caught.value


def test_bind_and_wildcards():
    with Ksock(0) as sender, Ksock(0, "r") as listener:
        listener.bind("$.Sensors.*")
        listener.bind("$.Sensors.%")
        listener.bind("$.Other")
        for name in ("$.Sensors.Kitchen", "$.Sensors.Kitchen.Temp", "$.Other", "$.Unbound"):
            sender.send_msg(Announcement(name, data=b"x"))
        # One copy per matching binding: % matches one level, * any depth.
        assert names_of(listener) == ["$.Sensors.Kitchen", "$.Sensors.Kitchen",
                                      "$.Sensors.Kitchen.Temp", "$.Other"]
        listener.unbind("$.Sensors.%")
        sender.send_msg(Announcement("$.Sensors.Hall"))
        assert names_of(listener) == ["$.Sensors.Hall"]
        raises_errno(errno.EBADMSG, listener.bind, "$.Fred*")
        raises_errno(errno.EBADMSG, listener.bind, "Fred")
        raises_errno(errno.EINVAL, listener.unbind, "$.NeverBound")
        raises_errno(errno.EBADMSG, sender.send_msg, Announcement("$.Sensors.*"))


def test_request_and_reply():
    with Ksock(0) as replier, Ksock(0) as asker, Ksock(0, "r") as listener:
        replier.bind("$.Time", replier=True)
        listener.bind("$.Time")
        assert asker.find_replier("$.Time") == replier.ksock_id()
        assert asker.find_replier("$.Nobody") is None
        sent = asker.send_msg(Request("$.Time", data=b"now?"))
        assert asker.last_msg_id() == sent
        request = replier.read_next_msg()
        assert request.wants_us_to_reply() and request.id == sent
        assert request.from_ == asker.ksock_id()
        assert replier.num_unreplied_to() == 1
        heard = listener.read_next_msg()
        assert heard.is_request() and not heard.wants_us_to_reply()
        answer_id = replier.send_msg(reply_to(request, data="12:00"))
        assert replier.num_unreplied_to() == 0
        answer = asker.read_next_msg().cast()
        assert isinstance(answer, Reply)
        assert answer.in_reply_to == sent and answer.id == answer_id
        assert answer.data == b"12:00" and answer.from_ == replier.ksock_id()
        assert listener.read_next_msg().is_reply(), "listeners hear the reply too"
        raises_errno(errno.ECONNREFUSED, replier.send_msg, reply_to(request, data="again"))
        raises_errno(errno.EADDRNOTAVAIL, asker.send_msg, Request("$.Nobody"))


def test_goneaway_and_ignored_after_sigkill(child):
    replier = child("""
import kbus
k = kbus.Ksock(0)
k.bind('$.Slow', replier=True)
print('bound', flush=True)
first = k.wait_for_msg()
print('read', first.id.serial_num, flush=True)
import signal
signal.pause()
""")
    replier.expect("bound")
    with Ksock(0) as asker:
        read_first = asker.send_msg(Request("$.Slow", data="one"))
        still_queued = asker.send_msg(Request("$.Slow", data="two"))
        replier.expect("read %d" % read_first.serial_num)
        replier.kill()
        statuses = {}
        for _ in range(2):
            msg = asker.wait_for_msg(timeout=10)
            assert msg is not None, "the bus answered for the dead replier"
            status = msg.cast()
            assert isinstance(status, Status) and status.is_synthetic()
            statuses[status.in_reply_to] = status.name
        assert statuses == {read_first: "$.KBUS.Replier.Ignored",
                            still_queued: "$.KBUS.Replier.GoneAway"}


def test_stateful_requests():
    with Ksock(0) as first, Ksock(0) as second, Ksock(0) as asker:
        first.bind("$.Session", replier=True)
        asker.send_msg(Request("$.Session", data="open"))
        first.send_msg(reply_to(first.read_next_msg(), data="opened"))
        opened = asker.read_next_msg()
        follow_up = stateful_request(opened, "$.Session", data="more")
        assert follow_up.to == first.ksock_id() and follow_up.is_stateful_request()
        sent = asker.send_msg(follow_up)
        got = first.read_next_msg()
        assert got.id == sent and got.to == first.ksock_id()
        first.send_msg(reply_to(got))
        asker.read_next_msg()
        first.unbind("$.Session", replier=True)
        second.bind("$.Session", replier=True)
        # The replier changed: the stateful request must not reach the new one.
        raises_errno(errno.EPIPE, asker.send_msg, stateful_request(follow_up, "$.Session"))
        second.unbind("$.Session", replier=True)
        raises_errno(errno.EADDRNOTAVAIL, asker.send_msg, stateful_request(follow_up, "$.Session"))


def test_replier_bind_events():
    with Ksock(0) as watcher, Ksock(0) as replier:
        watcher.bind("$.KBUS.ReplierBindEvent")
        assert watcher.report_replier_binds(True) == 0
        assert watcher.report_replier_binds(just_ask=True) == 1
        replier.bind("$.Served", replier=True)
        replier.bind("$.Heard")  # a listener: no event
        replier.unbind("$.Served", replier=True)
        events = [m for m in watcher]
        assert [m.name for m in events] == ["$.KBUS.ReplierBindEvent"] * 2
        assert all(m.is_synthetic() and m.from_ == 0 for m in events)
        assert [split_replier_bind_event_data(m.data) for m in events] == [
            (1, replier.ksock_id(), "$.Served"), (0, replier.ksock_id(), "$.Served")]
        raises_errno(errno.EBADMSG, replier.bind, "$.KBUS.ReplierBindEvent", True)
        assert watcher.report_replier_binds(False) == 1


def test_max_messages():
    with Ksock(0) as sender, Ksock(0) as listener:
        listener.bind("$.Busy")
        assert listener.max_messages() == 100
        assert listener.set_max_messages(2) == 2
        for n in range(3):
            sender.send_msg(Announcement("$.Busy", data=str(n)))
        assert listener.num_messages() == 2, "a full listener misses the message"
        raises_errno(errno.EBUSY, sender.send_msg,
                     Announcement("$.Busy", flags=Message.ALL_OR_FAIL))
        assert [m.data for m in listener] == [b"0", b"1"]
        assert listener.set_max_messages(0) == 2, "0 only asks"


def test_max_message_size():
    with Ksock(0) as sender, Ksock(0) as listener:
        listener.bind("$.Big")
        assert sender.max_message_size() == 409600
        assert sender.set_max_message_size(1) == 409600, "1 asks the absolute limit"
        assert sender.set_max_message_size(200) == 200
        assert listener.max_message_size() == 200, "the limit is the bus's"
        big = Announcement("$.Big", data=b"x" * 200)
        assert big.total_length() > 200
        # Refused when written, as KBUS did, not only when sent.
        raises_errno(errno.EMSGSIZE, sender.write_msg, big)
        raises_errno(errno.ENOMSG, sender.send)
        sender.send_msg(Announcement("$.Big", data=b"x" * 8))
        raises_errno(errno.EINVAL, sender.set_max_message_size, 99)
        assert [m.data for m in listener] == [b"x" * 8]


def test_only_once():
    with Ksock(0) as both, Ksock(0) as asker:
        both.bind("$.Q", replier=True)
        both.bind("$.Q")
        both.bind("$.*")
        asker.send_msg(Request("$.Q"))
        assert len(names_of(both)) == 3, "one copy per binding by default"
        assert both.want_messages_once(True) == 0
        assert both.want_messages_once(just_ask=True) == 1
        sent = asker.send_msg(Request("$.Q"))
        copies = list(both)
        assert len(copies) == 1 and copies[0].wants_us_to_reply() and copies[0].id == sent


def test_all_or_wait_with_select():
    with Ksock(0) as sender, Ksock(0) as listener:
        listener.bind("$.Slow")
        listener.set_max_messages(1)
        sender.send_msg(Announcement("$.Slow", data="first"))
        _, writable, _ = select.select([], [sender], [], 0)
        assert writable == [sender]
        raises_errno(errno.EAGAIN, sender.send_msg,
                     Announcement("$.Slow", data="second", flags=Message.ALL_OR_WAIT))
        blocked = sender.last_msg_id()
        _, writable, _ = select.select([], [sender], [], 0)
        assert writable == [], "not writable while the send is blocked"
        raises_errno(errno.EALREADY, sender.write_msg, Announcement("$.Slow"))
        assert listener.read_next_msg().data == b"first"
        _, writable, _ = select.select([], [sender], [], 10)
        assert writable == [sender], "writable once the blocked send went through"
        second = listener.wait_for_msg(timeout=10)
        assert second.data == b"second" and second.id == blocked


def test_urgent_messages_jump_the_queue():
    with Ksock(0) as sender, Ksock(0) as listener:
        listener.bind("$.Q")
        sender.send_msg(Announcement("$.Q", data="plain"))
        urgent = Announcement("$.Q", data="urgent")
        urgent.set_urgent()
        sender.send_msg(urgent)
        assert [m.data for m in listener] == [b"urgent", b"plain"]


def test_read_bindings():
    with Ksock(0) as replier, Ksock(0) as listener:
        replier.bind("$.Served", replier=True)
        listener.bind("$.Heard.*")
        bindings = read_bindings()
        assert (replier.ksock_id(), True, "$.Served") in bindings
        assert (listener.ksock_id(), False, "$.Heard.*") in bindings
        named = read_bindings({replier.ksock_id(): "replier"})
        assert ("replier", True, "$.Served") in named
        listener.close()
        assert all(b[2] != "$.Heard.*" for b in read_bindings())


def test_ksock_protocols():
    with Ksock(0) as sender:
        listener = Ksock(1, "r")
        with listener:
            assert listener.fileno() >= 0 and listener.which == 1
            assert select.select([listener], [], [], 0)[0] == []
            listener.bind("$.Iter")
            other_bus = Ksock(1)
            for n in range(3):
                other_bus.send_msg(Announcement("$.Iter", data=str(n)))
            other_bus.close()
            assert select.select([listener], [], [], 10)[0] == [listener]
            assert [m.data for m in listener] == [b"0", b"1", b"2"]
            assert sender.num_messages() == 0, "bus 0 heard nothing of bus 1"
            assert repr(listener) == "<Ksock /dev/kbus1 open for read>"
        assert listener.fd is None and "closed" in repr(listener)
        with pytest.raises(ValueError):
            listener.ksock_id()
    with pytest.raises(ValueError):
        Ksock(0, "w")
    raises_errno(errno.ENOENT, Ksock, 9)


def test_reading_by_parts():
    with Ksock(0) as sender, Ksock(0) as listener:
        listener.bind("$.Parts")
        message = Announcement("$.Parts", data="abcdefg")
        sender.write_data(message.to_bytes()[:50])
        sender.write_data(message.to_bytes()[50:])
        sent = sender.send()
        length = listener.next_msg()
        assert length == message.total_length() == listener.len_left()
        head = listener.read_data(10)
        assert listener.len_left() == length - 10
        got = Message.from_bytes(head + listener.read_data(length))
        assert got.id == sent and got.data == b"abcdefg"
        assert listener.read_data(4) == b"" and listener.next_msg() == 0


def test_name_over_the_limit_is_enametoolong():
    with Ksock(0) as k:
        long_name = "$." + "n" * 1000
        raises_errno(errno.ENAMETOOLONG, k.bind, long_name)
        raises_errno(errno.ENAMETOOLONG, k.find_replier, long_name)
        raises_errno(errno.ENAMETOOLONG, k.send_msg, Announcement(long_name))
        k.bind("$.Fine")
        k.send_msg(Announcement("$.Fine"))
        assert names_of(k) == ["$.Fine"], "the Ksock carries on"


def test_discard_and_nothing_to_send():
    with Ksock(0) as k:
        raises_errno(errno.ENOMSG, k.send)
        k.write_msg(Announcement("$.Dropped"))
        k.discard()
        raises_errno(errno.ENOMSG, k.send)
        assert k.last_msg_id() == MessageId(0, 0)
