"""A Python program that uses /dev/kbus0 the way KBUS's own Python module
did: a file opened with open(), ioctls through fcntl.ioctl with the numbers
of kbus_defns.h, messages written and read as bytes, select() on the file,
and /proc/kbus/bindings read as text. Run under `xkbus run`; exits 0 when
everything behaved as the kernel module did."""

import array
import ctypes
import errno
import fcntl
import os
import select
import struct

PTR = ctypes.sizeof(ctypes.c_char_p)


def ioc(direction, number, size):
    return (direction << 30) | (size << 16) | (ord("k") << 8) | number


BIND = ioc(1, 2, PTR)
KSOCKID = ioc(2, 4, PTR)
REPLIER = ioc(3, 5, PTR)
NEXTMSG = ioc(2, 6, PTR)
SEND = ioc(2, 8, PTR)
MAXMSGSIZE = ioc(3, 18, PTR)

HEADER = struct.Struct("=I II II I I II II I I I I 4x Q Q I 4x")
assert HEADER.size == 88


class Naming(ctypes.Structure):
    _fields_ = [("flag", ctypes.c_uint32), ("length", ctypes.c_uint32),
                ("name", ctypes.c_char_p)]


def entire(name, data=b"", flags=0):
    padded_name = name + b"\0" * (4 - len(name) % 4)
    padded_data = data + b"\0" * (-len(data) % 4)
    header = HEADER.pack(0x7375624B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, flags, len(name),
                         len(data), 0, 0, 0x4B627573)
    return header + padded_name + padded_data + struct.pack("=I", 0x4B627573)


def u32(ksock, request, value=0):
    cell = array.array("I", [value])
    result = fcntl.ioctl(ksock, request, cell, True)
    return result, cell[0]


def main():
    sender = open("/dev/kbus0", "r+b", buffering=0)
    listener = open("/dev/kbus0", "rb", buffering=0)
    assert u32(sender, KSOCKID)[1] == 1 and u32(listener, KSOCKID)[1] == 2
    fcntl.ioctl(listener, BIND, Naming(0, 10, b"$.Py.Hello"))
    fcntl.ioctl(sender, BIND, Naming(1, 10, b"$.Py.Serve"))
    query = Naming(0, 10, b"$.Py.Serve")
    assert fcntl.ioctl(listener, REPLIER, query) == 1 and query.flag == 1

    sender.write(entire(b"$.Py.Hello", b"hi there"))
    sent = array.array("I", [0, 0])
    fcntl.ioctl(sender, SEND, sent, True)
    assert sent.tolist() == [0, 1]
    assert select.select([listener], [], [], 10)[0] == [listener]
    result, length = u32(listener, NEXTMSG)
    assert result == 1 and length == len(entire(b"$.Py.Hello", b"hi there"))
    message = listener.read(length)
    assert message[88:98] == b"$.Py.Hello" and b"hi there" in message
    assert listener.read(10) == b""

    try:
        fcntl.ioctl(listener, BIND, Naming(0, 0, b""))
    except OSError as e:
        assert e.errno == errno.EBADMSG, e
    else:
        raise AssertionError("an empty name was bound")
    assert u32(sender, MAXMSGSIZE)[1] == 409600
    assert not os.isatty(sender.fileno())

    with open("/proc/kbus/bindings") as proc:
        lines = proc.read().splitlines()
    assert lines[0].startswith("# <device> is bound to")
    assert "  0:        2 %8d  L  $.Py.Hello" % os.getpid() in lines, lines
    sender.close()
    listener.close()


if __name__ == "__main__":
    main()
