"""The xkbus module: receive() and request() with timeouts, and an asyncio
receive."""

import asyncio
import time

import pytest

import kbus
import xkbus


def test_request_returns_the_reply(child):
    replier = child("""
import xkbus
k = xkbus.Ksock()
k.bind('$.Double', replier=True)
print('bound', flush=True)
for _ in range(3):
    request = k.receive()
    k.reply(request, str(2 * int(request.data)))
""")
    replier.expect("bound")
    with xkbus.Ksock() as k:
        for n in range(3):
            answer = k.request("$.Double", str(n), timeout=10)
            assert isinstance(answer, xkbus.Reply) and answer.data == str(2 * n).encode()
    assert replier.wait() == 0


def test_request_returns_the_status_when_the_replier_dies(child):
    replier = child("""
import signal, xkbus
k = xkbus.Ksock()
k.bind('$.Doomed', replier=True)
print('bound', flush=True)
k.receive()
print('read', flush=True)
signal.pause()
""")
    replier.expect("bound")
    with xkbus.Ksock() as k:
        sent_at = k.send_msg(kbus.Request("$.Doomed"))
        replier.expect("read")
        replier.kill()
        status = k.receive(timeout=10)
        assert isinstance(status, xkbus.Status)
        assert status.name == "$.KBUS.Replier.Ignored" and status.in_reply_to == sent_at


def test_request_times_out_and_keeps_other_messages():
    with xkbus.Ksock() as silent, xkbus.Ksock() as k:
        silent.bind("$.Silent", replier=True)
        k.bind("$.News")
        k.send_msg(kbus.Announcement("$.News", data="before"))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            k.request("$.Silent", timeout=0.2)
        assert time.monotonic() - started >= 0.2
        news = k.receive(timeout=0)
        assert isinstance(news, kbus.Announcement) and news.data == b"before"
        assert k.receive(timeout=0) is None


def test_receive_async():
    async def scenario():
        with xkbus.Ksock() as k, xkbus.Ksock() as sender:
            k.bind("$.Async")
            waiting = asyncio.ensure_future(k.receive_async())
            await asyncio.sleep(0)
            assert not waiting.done()
            sender.send_msg(kbus.Announcement("$.Async", data="hi"))
            msg = await asyncio.wait_for(waiting, 10)
            assert msg.data == b"hi"

    asyncio.run(scenario())
