"""KBUS messages: Message and its kinds (Announcement, Request, Reply,
Status), MessageId and OrigFrom, and the helpers that build replies and
stateful requests.

A message keeps its header as the C structure (``msg``, a ctypes structure
laid out as ``struct kbus_message_header``) and its name and data as bytes.
It travels in KBUS's "entire" form (:meth:`Message.to_bytes`), which is what
a Ksock reads and writes.
"""

import ctypes
import functools
import string
import struct

__all__ = [
    "MessageId", "OrigFrom", "Message", "Announcement", "Request", "Reply", "Status",
    "reply_to", "stateful_request", "split_replier_bind_event_data", "MSG_HEADER_LEN",
    "calc_padded_name_len", "calc_padded_data_len", "calc_entire_message_len",
    "hexdata", "hexify",
]


@functools.total_ordering
class _Pair:
    """Comparison, hashing and truth for a structure of two ids: ``{0, 0}``
    means none. Shared by MessageId and OrigFrom."""

    def _key(self):
        return tuple(getattr(self, field) for field, _ in self._fields_)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self):
        return hash(self._key())

    def __bool__(self):
        return self._key() != (0, 0)


class MessageId(_Pair, ctypes.Structure):
    """A message id, ``{network_id, serial_num}``; ``{0, 0}`` means none.

    >>> MessageId(0, 5) + 2
    MessageId(0, 7)
    """
    _fields_ = [("network_id", ctypes.c_uint32), ("serial_num", ctypes.c_uint32)]

    def __repr__(self):
        return "MessageId(%u, %u)" % self._key()

    def __str__(self):
        return "[%u:%u]" % self._key()

    def __add__(self, other):
        if not isinstance(other, int):
            return NotImplemented
        return MessageId(self.network_id, self.serial_num + other)


@functools.total_ordering
class OrigFrom(_Pair, ctypes.Structure):
    """Where a message came from across Limpets (``orig_from``, ``final_to``)."""
    _fields_ = [("network_id", ctypes.c_uint32), ("local_id", ctypes.c_uint32)]

    def __repr__(self):
        return "OrigFrom(%u, %u)" % self._key()

    def __str__(self):
        return "(%u,%u)" % self._key()


class _Header(ctypes.Structure):
    """struct kbus_message_header: what a Message's ``msg`` is."""
    _fields_ = [
        ("start_guard", ctypes.c_uint32),
        ("id", MessageId),
        ("in_reply_to", MessageId),
        ("to", ctypes.c_uint32),
        ("from_", ctypes.c_uint32),
        ("orig_from", OrigFrom),
        ("final_to", OrigFrom),
        ("extra", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("name_len", ctypes.c_uint32),
        ("data_len", ctypes.c_uint32),
        ("name", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("end_guard", ctypes.c_uint32),
    ]


MSG_HEADER_LEN = ctypes.sizeof(_Header)
_START_GUARD = 0x7375624B
_END_GUARD = 0x4B627573


def calc_padded_name_len(name_len):
    """The name's length in an entire message: NUL-terminated, padded to 4."""
    return 4 * ((name_len + 1 + 3) // 4)


def calc_padded_data_len(data_len):
    """The data's length in an entire message: padded to 4."""
    return 4 * ((data_len + 3) // 4)


def calc_entire_message_len(name_len, data_len):
    """KBUS_ENTIRE_MSG_LEN: header, padded name, padded data, end guard."""
    return MSG_HEADER_LEN + calc_padded_name_len(name_len) + calc_padded_data_len(data_len) + 4


def hexdata(data):
    """`data` with everything but letters, digits and punctuation as \\xNN."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    shown = string.ascii_letters + string.digits + string.punctuation
    return "".join(chr(b) if chr(b) in shown else "\\x%02x" % b for b in data)


def hexify(data):
    """`data` as space-separated hex bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return " ".join("%02x" % b for b in data)


def _as_bytes(data, encoding, errors):
    if data is None:
        return b""
    if isinstance(data, str):
        return data.encode(encoding, errors)
    return bytes(data)


def _id_of(value):
    if value is None:
        return MessageId(0, 0)
    if isinstance(value, MessageId):
        return MessageId(value.network_id, value.serial_num)
    return MessageId(*value)


def _origin_of(value):
    if value is None:
        return OrigFrom(0, 0)
    if isinstance(value, OrigFrom):
        return OrigFrom(value.network_id, value.local_id)
    return OrigFrom(*value)


def _copy_header(header):
    return _Header.from_buffer_copy(bytes(header))


class Message:
    """A KBUS message.

    ``Message(name, data=None, to=None, from_=None, orig_from=None,
    final_to=None, in_reply_to=None, flags=None, id=None)``. `data` may be
    bytes or a str (encoded with `encoding` and `errors`). Unset ids read as
    None, unset numbers as 0, absent data as None.

    >>> Message('$.Fred', '1234')
    Message('$.Fred', data=b'1234')
    """

    START_GUARD = _START_GUARD
    END_GUARD = _END_GUARD

    WANT_A_REPLY = 1 << 0
    WANT_YOU_TO_REPLY = 1 << 1
    SYNTHETIC = 1 << 2
    URGENT = 1 << 3
    ALL_OR_WAIT = 1 << 8
    ALL_OR_FAIL = 1 << 9

    def __init__(self, name, data=None, to=None, from_=None, orig_from=None, final_to=None,
                 in_reply_to=None, flags=None, id=None, encoding="utf-8", errors="strict"):
        if not isinstance(name, str) or not name.startswith("$."):
            raise ValueError('Message name "%s" does not start "$."' % (name,))
        self._set(name.encode("utf-8"), _as_bytes(data, encoding, errors))
        h = self.msg
        h.id = _id_of(id)
        h.in_reply_to = _id_of(in_reply_to)
        h.to = to or 0
        h.from_ = from_ or 0
        h.orig_from = _origin_of(orig_from)
        h.final_to = _origin_of(final_to)
        h.flags = flags or 0

    def _set(self, name, data, header=None):
        self._name = name
        self._data = data
        self.msg = _copy_header(header) if header is not None else _Header()
        self.msg.start_guard = _START_GUARD
        self.msg.end_guard = _END_GUARD
        self.msg.name_len = len(name)
        self.msg.data_len = len(data)
        self.msg.name = None
        self.msg.data = None

    # ---- other ways to make one

    @classmethod
    def _blank(cls):
        return cls.__new__(cls)

    @classmethod
    def from_bytes(cls, arg):
        """A message from its entire form, as a Ksock reads it."""
        arg = bytes(arg)
        if len(arg) < MSG_HEADER_LEN + 8:
            raise ValueError("Cannot form entire message from %d bytes" % len(arg))
        header = _Header.from_buffer_copy(arg[:MSG_HEADER_LEN])
        if header.start_guard != _START_GUARD:
            raise ValueError("Cannot form entire message: no message start guard")
        name_len, data_len = header.name_len, header.data_len
        if len(arg) < calc_entire_message_len(name_len, data_len):
            raise ValueError("Cannot form entire message: %d bytes, %d needed" %
                             (len(arg), calc_entire_message_len(name_len, data_len)))
        data_at = MSG_HEADER_LEN + calc_padded_name_len(name_len)
        msg = cls._blank()
        msg._set(arg[MSG_HEADER_LEN:MSG_HEADER_LEN + name_len], arg[data_at:data_at + data_len],
                 header)
        return msg

    @classmethod
    def from_message(cls, msg, data=None, to=None, from_=None, orig_from=None, final_to=None,
                     in_reply_to=None, flags=None, id=None, encoding="utf-8", errors="strict"):
        """A copy of `msg`, with any of the given fields changed."""
        (m_id, m_in_reply_to, m_to, m_from, m_orig, m_final, m_flags, name,
         m_data) = msg.extract()
        return cls._with(name, m_data if data is None else data,
                         m_to if to is None else to, m_from if from_ is None else from_,
                         m_orig if orig_from is None else orig_from,
                         m_final if final_to is None else final_to,
                         m_in_reply_to if in_reply_to is None else in_reply_to,
                         m_flags if flags is None else flags, m_id if id is None else id,
                         encoding, errors)

    @classmethod
    def from_sequence(cls, seq, data=None, to=None, from_=None, orig_from=None, final_to=None,
                      in_reply_to=None, flags=None, id=None, encoding="utf-8", errors="strict"):
        """A message from the tuple :meth:`extract` returns, fields changed as given."""
        (s_id, s_in_reply_to, s_to, s_from, s_orig, s_final, s_flags, name, s_data) = seq
        return cls._with(name, s_data if data is None else data, s_to if to is None else to,
                         s_from if from_ is None else from_,
                         s_orig if orig_from is None else orig_from,
                         s_final if final_to is None else final_to,
                         s_in_reply_to if in_reply_to is None else in_reply_to,
                         s_flags if flags is None else flags, s_id if id is None else id,
                         encoding, errors)

    @classmethod
    def _with(cls, name, data, to, from_, orig_from, final_to, in_reply_to, flags, id,
              encoding, errors):
        msg = Message(name, data, to, from_, orig_from, final_to, in_reply_to, flags, id,
                      encoding, errors)
        if cls is Message:
            return msg
        typed = cls._blank()
        typed._set(msg._name, msg._data, msg.msg)
        return typed

    # ---- fields

    @property
    def id(self):
        return MessageId(*self.msg.id._key()) if self.msg.id else None

    @property
    def in_reply_to(self):
        return MessageId(*self.msg.in_reply_to._key()) if self.msg.in_reply_to else None

    @property
    def to(self):
        return self.msg.to

    @property
    def from_(self):
        return self.msg.from_

    @property
    def orig_from(self):
        return OrigFrom(*self.msg.orig_from._key()) if self.msg.orig_from else None

    @property
    def final_to(self):
        return OrigFrom(*self.msg.final_to._key()) if self.msg.final_to else None

    @property
    def flags(self):
        return self.msg.flags

    @property
    def extra(self):
        return self.msg.extra

    @property
    def name(self):
        return self._name.decode("utf-8")

    @property
    def data(self):
        return self._data if self._data else None

    def extract(self):
        """(id, in_reply_to, to, from_, orig_from, final_to, flags, name, data)"""
        return (self.id, self.in_reply_to, self.to, self.from_, self.orig_from, self.final_to,
                self.flags, self.name, self.data)

    # ---- the entire form

    def total_length(self):
        """The length of the message in its entire form."""
        return calc_entire_message_len(len(self._name), len(self._data))

    def to_bytes(self):
        """The message in KBUS's entire form (what is written to a Ksock)."""
        header = _copy_header(self.msg)
        header.name_len = len(self._name)
        header.data_len = len(self._data)
        header.name = None
        header.data = None
        name = self._name + b"\0" * (calc_padded_name_len(len(self._name)) - len(self._name))
        data = self._data + b"\0" * (calc_padded_data_len(len(self._data)) - len(self._data))
        return bytes(header) + name + data + struct.pack("=I", _END_GUARD)

    # ---- flags and kinds

    def _set_flag(self, bit, value):
        self.msg.flags = (self.msg.flags | bit) if value else (self.msg.flags & ~bit)

    def set_want_reply(self, value=True):
        self._set_flag(Message.WANT_A_REPLY, value)

    def set_urgent(self, value=True):
        self._set_flag(Message.URGENT, value)

    def wants_us_to_reply(self):
        both = Message.WANT_A_REPLY | Message.WANT_YOU_TO_REPLY
        return self.msg.flags & both == both

    def is_synthetic(self):
        return bool(self.msg.flags & Message.SYNTHETIC)

    def is_urgent(self):
        return bool(self.msg.flags & Message.URGENT)

    def is_reply(self):
        return bool(self.msg.in_reply_to)

    def is_request(self):
        return bool(self.msg.flags & Message.WANT_A_REPLY)

    def is_stateful_request(self):
        return self.is_request() and self.msg.to != 0

    def cast(self):
        """A copy as the kind of message this is: Status, Reply, Request or
        Announcement (a Ksock reads plain Messages)."""
        if self.is_reply():
            kind = Status if self._name.startswith(b"$.KBUS.") else Reply
        elif self.is_request():
            kind = Request
        else:
            kind = Announcement
        typed = kind._blank()
        typed._set(self._name, self._data, self.msg)
        return typed

    # ---- comparison and display

    def __eq__(self, other):
        if not isinstance(other, Message):
            return NotImplemented
        return self.extract() == other.extract() and self.msg.extra == other.msg.extra

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None  # mutable (the flags can be set)

    def equivalent(self, other):
        """Equal in `to`, name and data (ids, flags and origins aside)."""
        return (self.to, self._name, self._data) == (other.to, other._name, other._data)

    def _repr_args(self):
        args = [repr(self.name)]
        for label, value in (("data", self.data), ("to", self.to), ("from_", self.from_),
                             ("orig_from", self.orig_from), ("final_to", self.final_to),
                             ("in_reply_to", self.in_reply_to)):
            if value:
                args.append("%s=%r" % (label, value))
        if self.flags:
            args.append("flags=0x%08x" % self.flags)
        if self.id:
            args.append("id=%r" % self.id)
        return args

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(self._repr_args()))

    def __str__(self):
        if self.is_reply():
            kind = "Status" if self._name.startswith(b"$.KBUS.") else "Reply"
        elif self.is_request():
            kind = "Request"
        else:
            kind = "Announcement"
        parts = ["<%s %r" % (kind, self.name)]
        if self.id:
            parts.append("id=%s" % self.id)
        if self.to:
            parts.append("to=%u" % self.to)
        if self.from_:
            parts.append("from=%u" % self.from_)
        if self.in_reply_to:
            parts.append("in_reply_to=%s" % self.in_reply_to)
        if self.flags:
            parts.append("flags=%08x" % self.flags)
        if self.data:
            parts.append("data=%r" % hexdata(self.data))
        return " ".join(parts) + ">"


class Announcement(Message):
    """A message that wants no reply."""

    def __init__(self, name, data=None, to=None, from_=None, flags=None, id=None,
                 encoding="utf-8", errors="strict"):
        super().__init__(name, data=data, to=to, from_=from_, flags=flags, id=id,
                         encoding=encoding, errors=errors)

    def set_want_reply(self, value=True):
        raise TypeError("An Announcement does not want a reply: use a Request")


class Request(Message):
    """A message that wants a reply: WANT_A_REPLY is always set. With `to`,
    a stateful request, for that replier only."""

    def __init__(self, name, data=None, to=None, from_=None, final_to=None, flags=None,
                 id=None, encoding="utf-8", errors="strict"):
        super().__init__(name, data=data, to=to, from_=from_, final_to=final_to, flags=flags,
                         id=id, encoding=encoding, errors=errors)
        self.set_want_reply(True)

    @classmethod
    def _with(cls, *args):
        request = super()._with(*args)
        request.set_want_reply(True)
        return request


class Reply(Message):
    """The answer to a request: `in_reply_to` is the request's id and `to`
    its sender. :func:`reply_to` makes one from the request."""

    def __init__(self, name, data=None, to=None, from_=None, orig_from=None, in_reply_to=None,
                 flags=None, id=None, encoding="utf-8", errors="strict"):
        super().__init__(name, data=data, to=to, from_=from_, orig_from=orig_from,
                         in_reply_to=in_reply_to, flags=flags, id=id, encoding=encoding,
                         errors=errors)
        if not self.in_reply_to:
            raise ValueError("A Reply must specify in_reply_to")


class Status(Message):
    """A message the bus sent in place of a reply ($.KBUS.Replier.GoneAway
    and the like). Only made from what was read: :meth:`from_bytes`."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("Use the Status.from_bytes() method to construct a Status")

    @classmethod
    def from_message(cls, *args, **kwargs):
        raise NotImplementedError("Use the Status.from_bytes() method to construct a Status")

    @classmethod
    def from_sequence(cls, *args, **kwargs):
        raise NotImplementedError("Use the Status.from_bytes() method to construct a Status")


def reply_to(original, data=None, flags=0, encoding="utf-8", errors="strict"):
    """The Reply to `original`, which must be a request this Ksock is to
    answer (WANT_A_REPLY and WANT_YOU_TO_REPLY both set)."""
    if not original.wants_us_to_reply():
        raise ValueError("Cannot form a reply to a message that does not have"
                         " WANT_A_REPLY and WANT_YOU_TO_REPLY set: %s" % (original,))
    return Reply(original.name, data=data, in_reply_to=original.id, to=original.from_,
                 flags=flags, encoding=encoding, errors=errors)


def stateful_request(earlier_msg, name, data=None, from_=None, flags=None, id=None,
                     encoding="utf-8", errors="strict"):
    """A Request to the replier that answered `earlier_msg` (a Reply), or to
    the one an earlier stateful Request went to."""
    if earlier_msg.is_reply():
        to, final_to = earlier_msg.from_, earlier_msg.orig_from
    elif earlier_msg.is_stateful_request():
        to, final_to = earlier_msg.to, earlier_msg.final_to
    else:
        raise ValueError("The first argument of stateful_request() must be a"
                         " Reply or a previous Stateful Request")
    return Request(name, data=data, to=to, from_=from_, final_to=final_to, flags=flags, id=id,
                   encoding=encoding, errors=errors)


def split_replier_bind_event_data(data):
    """(is_bind, binder, name) from the data of a $.KBUS.ReplierBindEvent."""
    data = bytes(data)
    if len(data) < 12:
        raise ValueError("A ReplierBindEvent's data is at least 12 bytes, not %d" % len(data))
    is_bind, binder, name_len = struct.unpack_from("=III", data)
    if name_len > len(data) - 12:
        raise ValueError("A ReplierBindEvent's name runs past its data")
    return (is_bind, binder, data[12:12 + name_len].decode("utf-8"))
