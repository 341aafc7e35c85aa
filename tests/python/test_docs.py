"""Every Python example in docs/python.md runs, as a program of its own,
against the test's daemon, and succeeds."""

import os
import re
import subprocess
import sys

import pytest

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python.md")


def examples():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_page_has_examples():
    assert len(examples()) >= 5


@pytest.mark.parametrize("number", range(len(examples())))
def test_example_runs(number):
    code = examples()[number]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert done.returncode == 0, "example %d failed:\n%s\n%s" % (number, code, done.stderr)
