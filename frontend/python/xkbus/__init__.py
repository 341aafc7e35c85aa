"""xkbus's own Python API, over the kbus package: a Ksock that waits with
timeouts, and request() that returns the reply or the status the bus sent in
its place. See docs/python.md.

    with xkbus.Ksock() as k:
        answer = k.request("$.Time.Now", timeout=1.0)
        if isinstance(answer, xkbus.Status):
            ...  # the replier went away: $.KBUS.Replier.GoneAway and friends
"""

import asyncio
import collections
import select
import time

import kbus
from kbus import Message, Reply, Request, Status, reply_to  # noqa: F401

__all__ = ["Ksock", "Message", "Request", "Reply", "Status", "reply_to"]


class Ksock(kbus.Ksock):
    """A kbus.Ksock with receive() and request() that wait, with timeouts
    in seconds (None: for ever). Messages that arrive while request() waits
    for its answer are kept, in order, for receive()."""

    def __init__(self, which=0, mode="rw"):
        super().__init__(which, mode)
        self._held = collections.deque()

    def _next(self):
        if self._held:
            return self._held.popleft()
        msg = self.read_next_msg()
        return msg.cast() if msg is not None else None

    def receive(self, timeout=None):
        """The next message (as its kind: Announcement, Request, Reply or
        Status), waiting up to `timeout`; None if none came."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            msg = self._next()
            if msg is not None:
                return msg
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                return None
            select.select([self], [], [], left)

    def request(self, name, data=None, timeout=None, flags=0):
        """Sends a Request and returns its answer: the Reply, or the Status
        the bus sent because the replier went away, ignored it or unbound.
        Raises TimeoutError if neither came within `timeout`."""
        sent = self.send_msg(Request(name, data=data, flags=flags))
        deadline = None if timeout is None else time.monotonic() + timeout
        others = []
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                msg = self.receive(left)
                if msg is None:
                    raise TimeoutError("no answer to %s %s" % (name, sent))
                if msg.in_reply_to == sent:
                    return msg
                others.append(msg)
        finally:
            self._held.extendleft(reversed(others))

    def reply(self, request, data=None, flags=0):
        """Answers a request this Ksock read; returns the reply's MessageId."""
        return self.send_msg(reply_to(request, data=data, flags=flags))

    async def receive_async(self):
        """Waits, without blocking the event loop, for the next message."""
        loop = asyncio.get_running_loop()
        while True:
            msg = self._next()
            if msg is not None:
                return msg
            readable = loop.create_future()
            loop.add_reader(self.fileno(),
                            lambda: readable.done() or readable.set_result(None))
            try:
                await readable
            finally:
                loop.remove_reader(self.fileno())
