"""The libkbus C API, loaded with ctypes.

Which libkbus.so.1 is loaded: $XKBUS_LIBKBUS if set (the build tree's tests
use it), else the one installed next to this package (its path relative to
the package is written at install time into _paths.py), else whatever the
dynamic loader finds.
"""

import ctypes
import os

from kbus.messages import MessageId


def _candidates():
    explicit = os.environ.get("XKBUS_LIBKBUS")
    if explicit:
        yield explicit
        return
    try:
        from kbus import _paths
    except ImportError:
        _paths = None
    if _paths is not None:
        here = os.path.dirname(os.path.abspath(__file__))
        yield os.path.normpath(os.path.join(here, _paths.LIBKBUS_FROM_PACKAGE))
    yield "libkbus.so.1"


def _load():
    failures = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as exc:
            failures.append("%s: %s" % (path, exc))
    raise ImportError("cannot load libkbus.so.1 (" + "; ".join(failures) + ")")


lib = _load()

_u32 = ctypes.c_uint32
_u32p = ctypes.POINTER(ctypes.c_uint32)
_int = ctypes.c_int
_idp = ctypes.POINTER(MessageId)

_SIGNATURES = {
    "kbus_ksock_open": (_int, [_u32, _int]),
    "kbus_ksock_close": (_int, [_int]),
    "kbus_ksock_bind": (_int, [_int, ctypes.c_char_p, _u32]),
    "kbus_ksock_unbind": (_int, [_int, ctypes.c_char_p, _u32]),
    "kbus_ksock_id": (_int, [_int, _u32p]),
    "kbus_ksock_next_msg": (_int, [_int, _u32p]),
    "kbus_ksock_len_left": (_int, [_int, _u32p]),
    "kbus_ksock_last_msg_id": (_int, [_int, _idp]),
    "kbus_ksock_find_replier": (_int, [_int, ctypes.c_char_p, _u32p]),
    "kbus_ksock_max_messages": (_int, [_int, _u32p]),
    "kbus_ksock_num_messages": (_int, [_int, _u32p]),
    "kbus_ksock_num_unreplied_to": (_int, [_int, _u32p]),
    "kbus_ksock_send": (_int, [_int, _idp]),
    "kbus_ksock_discard": (_int, [_int]),
    "kbus_ksock_only_once": (_int, [_int, _u32]),
    "kbus_ksock_report_replier_binds": (_int, [_int, _u32]),
    "kbus_ksock_kernel_module_verbose": (_int, [_int, _u32]),
    "kbus_ksock_max_message_size": (_int, [_int, _u32p]),
    "kbus_ksock_new_device": (_int, [_int, _u32p]),
    "kbus_ksock_write_data": (_int, [_int, ctypes.c_char_p, ctypes.c_size_t]),
    "kbus_ksock_read": (ctypes.c_ssize_t, [_int, ctypes.c_void_p, ctypes.c_size_t]),
    "kbus_read_proc": (_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
}
for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _function = getattr(lib, _name)
    _function.restype = _restype
    _function.argtypes = _argtypes

# kbus_read_proc's text is malloc'd; the process's C library frees it.
_free = ctypes.CDLL(None).free
_free.argtypes = [ctypes.c_void_p]
_free.restype = None


def check(rv):
    """libkbus returns -errno on failure: raise it as KBUS's ioctls did."""
    if rv < 0:
        raise OSError(-rv, os.strerror(-rv))
    return rv


def proc_text(which):
    """/proc/kbus/<which> ('bindings' or 'stats') in the kernel's format."""
    text = ctypes.c_void_p()
    check(lib.kbus_read_proc(which.encode(), ctypes.byref(text)))
    try:
        return ctypes.string_at(text).decode("utf-8", "replace")
    finally:
        _free(text)
