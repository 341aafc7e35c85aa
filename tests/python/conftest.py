"""Every test gets its own xkbusd on a private socket (XKBUS_SOCKET), with
two buses, as the C++ end-to-end tests do. $XKBUSD is the daemon to run;
CTest sets it, with PYTHONPATH and XKBUS_LIBKBUS pointing into the build.
"""

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

XKBUSD = os.environ.get("XKBUSD", "xkbusd")


def _accepts(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


@pytest.fixture(autouse=True)
def daemon():
    """A fresh xkbusd for each test: its Ksock ids, serials and settings
    start from scratch."""
    with tempfile.TemporaryDirectory(prefix="xkbus-py-") as directory:
        path = os.path.join(directory, "xkbusd.sock")
        os.environ["XKBUS_SOCKET"] = path
        process = subprocess.Popen([XKBUSD, "--socket", path, "--buses", "2",
                                    "--log-level", "warn"])
        deadline = time.monotonic() + 10
        # Ready when it accepts a connection: polled, not slept on blindly.
        while not _accepts(path):
            assert process.poll() is None, "xkbusd exited at start"
            assert time.monotonic() < deadline, "xkbusd did not start"
            time.sleep(0.005)
        yield path
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


class Child:
    """A Python program in its own process, talking over its stdout."""

    def __init__(self, code):
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                        bufsize=0, env=dict(os.environ))

    def expect(self, line, timeout=10):
        """Waits for the child to print `line` (it tells where it got to).
        Read a byte at a time, unbuffered, so no line waits in a buffer
        that select() cannot see."""
        deadline = time.monotonic() + timeout
        got = b""
        while not got.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            assert ready, "the child said %r, then nothing within %ss" % (got, timeout)
            byte = self.process.stdout.read(1)
            assert byte, "the child ended after saying %r" % got
            got += byte
        assert got.decode().strip() == line, "the child said %r, not %r" % (got, line)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process.stdout.close()

    def wait(self, timeout=10):
        code = self.process.wait(timeout=timeout)
        self.process.stdout.close()
        return code


@pytest.fixture
def child():
    children = []

    def start(code):
        c = Child(code)
        children.append(c)
        return c

    yield start
    for c in children:
        if c.process.poll() is None:
            c.kill()
