"""The KBUS Ksock: one end point on a bus, over libkbus (docs/python.md).

Every method that KBUS made an ioctl raises OSError (IOError) with KBUS's
errno when the bus refuses, exactly as the kernel module's ioctls did.
"""

import ctypes
import os
import select

from kbus import _lib
from kbus._lib import check, lib
from kbus.messages import Message, MessageId

__all__ = ["Ksock", "read_bindings"]

_QUERY = 0xFFFFFFFF


class Ksock:
    """A Ksock on bus `which` (``/dev/kbus<which>``), `mode` 'r' or 'rw'.

    Iterating over a Ksock gives its messages until none is left; ``with``
    closes it; :meth:`fileno` makes it usable with select, poll and epoll.
    """

    def __init__(self, which=0, mode="rw"):
        if mode not in ("r", "rw"):
            raise ValueError("Ksock mode should be 'r' or 'rw', not '%s'" % mode)
        self.which = which
        self.name = "/dev/kbus%d" % which
        self.mode = "read" if mode == "r" else "read/write"
        self.fd = check(lib.kbus_ksock_open(which, os.O_RDONLY if mode == "r" else os.O_RDWR))

    def __str__(self):
        if self.fd is None:
            return "Ksock device %d (closed)" % self.which
        return "Ksock device %d, id %d, mode %s" % (self.which, self.ksock_id(), self.mode)

    def __repr__(self):
        if self.fd is None:
            return "<Ksock %s closed>" % self.name
        return "<Ksock %s open for %s>" % (self.name, self.mode)

    def _fd(self):
        if self.fd is None:
            raise ValueError("I/O operation on a closed Ksock")
        return self.fd

    def close(self):
        """Closes the Ksock: its bindings go, and the bus answers for any
        request it still owes a reply to."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            self.mode = None
            check(lib.kbus_ksock_close(fd))

    def __del__(self):
        try:
            self.close()
        except (OSError, AttributeError, TypeError):
            pass  # at interpreter exit, or never opened

    # ---- bindings

    def bind(self, name, replier=False):
        """Bind to messages called `name` (wildcards allowed), as their
        only replier if `replier`."""
        check(lib.kbus_ksock_bind(self._fd(), name.encode("utf-8"), 1 if replier else 0))

    def unbind(self, name, replier=False):
        """Remove a binding made with exactly these arguments."""
        check(lib.kbus_ksock_unbind(self._fd(), name.encode("utf-8"), 1 if replier else 0))

    def find_replier(self, name):
        """The Ksock id bound as replier to exactly `name`, or None."""
        found = ctypes.c_uint32(0)
        check(lib.kbus_ksock_find_replier(self._fd(), name.encode("utf-8"), ctypes.byref(found)))
        return found.value or None

    # ---- queries and settings

    def _out(self, function, value=0):
        cell = ctypes.c_uint32(value)
        check(function(self._fd(), ctypes.byref(cell)))
        return cell.value

    def ksock_id(self):
        return self._out(lib.kbus_ksock_id)

    def next_msg(self):
        """Starts reading the next message: returns its length, or 0 if none."""
        return self._out(lib.kbus_ksock_next_msg)

    def len_left(self):
        """Bytes of the current message not yet read."""
        return self._out(lib.kbus_ksock_len_left)

    def last_msg_id(self):
        """The id of the last message this Ksock sent."""
        found = MessageId(0, 0)
        check(lib.kbus_ksock_last_msg_id(self._fd(), ctypes.byref(found)))
        return found

    def max_messages(self):
        return self._out(lib.kbus_ksock_max_messages)

    def set_max_messages(self, count):
        """Sets the queue limit (0 only asks); returns the limit."""
        return self._out(lib.kbus_ksock_max_messages, count)

    def num_messages(self):
        return self._out(lib.kbus_ksock_num_messages)

    def num_unreplied_to(self):
        """Requests read and not yet answered."""
        return self._out(lib.kbus_ksock_num_unreplied_to)

    def _switch(self, function, on, just_ask):
        return check(function(self._fd(), _QUERY if just_ask else (1 if on else 0)))

    def want_messages_once(self, only_once=False, just_ask=False):
        """Receive each message once, however many bindings match it.
        Returns the previous setting."""
        return self._switch(lib.kbus_ksock_only_once, only_once, just_ask)

    def kernel_module_verbose(self, verbose=True, just_ask=False):
        return self._switch(lib.kbus_ksock_kernel_module_verbose, verbose, just_ask)

    def report_replier_binds(self, report_events=True, just_ask=False):
        """Ask for $.KBUS.ReplierBindEvent messages (for the whole bus).
        Returns the previous setting."""
        return self._switch(lib.kbus_ksock_report_replier_binds, report_events, just_ask)

    def new_device(self):
        """Adds a bus; returns its number."""
        return self._out(lib.kbus_ksock_new_device)

    def max_message_size(self):
        return self._out(lib.kbus_ksock_max_message_size)

    def set_max_message_size(self, count):
        """Sets the bus's largest message (0 asks the current limit, 1 the
        absolute one); returns the limit or the answer."""
        return self._out(lib.kbus_ksock_max_message_size, count)

    # ---- writing and sending

    def write_data(self, data):
        """Writes bytes of a message (in its entire form); does not send."""
        data = bytes(data)
        check(lib.kbus_ksock_write_data(self._fd(), data, len(data)))
        return len(data)

    def write_msg(self, message):
        """Writes a Message; does not send it."""
        self.write_data(message.to_bytes())

    def send(self):
        """Sends what was written; returns its MessageId. EAGAIN: an
        ALL_OR_WAIT send is blocked (wait for the Ksock to be writable)."""
        sent = MessageId(0, 0)
        check(lib.kbus_ksock_send(self._fd(), ctypes.byref(sent)))
        return sent

    def send_msg(self, message):
        """write_msg and send: returns the MessageId."""
        self.write_msg(message)
        return self.send()

    def discard(self):
        """Forgets the message being written, or blocked in sending."""
        check(lib.kbus_ksock_discard(self._fd()))

    # ---- reading

    def read_data(self, count):
        """The next `count` bytes (or fewer) of the current message; b'' at its end."""
        buffer = ctypes.create_string_buffer(max(count, 1))
        got = check(lib.kbus_ksock_read(self._fd(), buffer, count))
        return buffer.raw[:got]

    def read_msg(self, length):
        """The current message, `length` bytes long (from next_msg), or None."""
        data = b""
        while len(data) < length:
            more = self.read_data(length - len(data))
            if not more:
                break
            data += more
        return Message.from_bytes(data) if data else None

    def read_next_msg(self):
        """The next message, or None if there is none."""
        return self.read_msg(self.next_msg())

    def wait_for_msg(self, timeout=None):
        """Waits up to `timeout` seconds (None: for ever) for a message;
        returns it, or None."""
        select.select([self], [], [], timeout)
        return self.read_next_msg()

    # ---- Python protocols

    def __enter__(self):
        return self

    def __exit__(self, etype, value, tb):
        self.close()
        return False

    def __iter__(self):
        return self

    def __next__(self):
        msg = self.read_next_msg()
        if msg is None:
            raise StopIteration
        return msg

    def fileno(self):
        return self._fd()


def read_bindings(names=None):
    """The bindings of every bus, as /proc/kbus/bindings lists them: a list
    of (id, is_replier, name). `names` may map Ksock ids to what to show
    instead of the id."""
    names = names or {}
    bindings = []
    for line in _lib.proc_text("bindings").splitlines():
        if not line or line.startswith("#"):
            continue
        _device, ksock, _pid, kind, name = line.split(None, 4)
        if kind not in ("R", "L"):
            raise ValueError("Got replier '%s' when expecting 'R' or 'L'" % kind)
        ksock = int(ksock)
        bindings.append((names.get(ksock, ksock), kind == "R", name))
    return bindings
