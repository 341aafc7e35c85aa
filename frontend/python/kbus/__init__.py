"""KBUS for Python 3, over xkbus: the API of KBUS's Python module (Ksock,
Message, Announcement, Request, Reply, Status, MessageId, OrigFrom,
reply_to, stateful_request, read_bindings), on the libkbus C API through
ctypes. See docs/python.md.
"""

from kbus.messages import *  # noqa: F401,F403
from kbus.messages import __all__ as _message_names
from kbus.ksock import *  # noqa: F401,F403
from kbus.ksock import __all__ as _ksock_names

__all__ = list(_message_names) + list(_ksock_names)
