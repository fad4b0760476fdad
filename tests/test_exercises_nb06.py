"""Exercise 06.4 (a SIGTERM handler that puts things back): the check says yes to the solution and no to the
skeleton and to each plausible mistake, naming it; and it never lets a signal end the test process."""
from __future__ import annotations

import signal

import pytest

from test_exercises import SOLUTIONS, _run

SOLUTION = (SOLUTIONS / "ex06_4.py").read_text()

# The notebook's own program, copied into a function as a learner might: a flag in a dict, the handler installed
# for good. It never puts the old handlers back.
COPIED_FROM_THE_NOTEBOOK = '''import signal
stop = {"signal": None}
def on_stop_signal(signum, frame):
    stop["signal"] = signum
def install_stop_handler():
    signal.signal(signal.SIGTERM, on_stop_signal)
    signal.signal(signal.SIGINT, on_stop_signal)
    return (lambda: stop["signal"] is not None), (lambda: None)
'''

EXITS_IN_THE_HANDLER = SOLUTION.replace(
    "        stopped.append(signum)  # only note it: the loop stops after the step it is in\n",
    "        stopped.append(signum)\n        raise SystemExit(128 + signum)\n")

LOCAL_FLAG = '''import signal
def install_stop_handler():
    stopped = False
    previous = {}
    def handler(signum, frame):
        stopped = True
        for sig, old in previous.items():
            signal.signal(sig, old)
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    def uninstall():
        for sig, old in previous.items():
            signal.signal(sig, old)
    return (lambda: stopped), uninstall
'''

RESTORES_THE_DEFAULT = SOLUTION.replace("    def uninstall():\n        for sig, old in previous.items():\n"
                                        "            signal.signal(sig, old)",
                                        "    def uninstall():\n        for sig in previous:\n"
                                        "            signal.signal(sig, signal.SIG_DFL)")

KEEPS_ITS_HANDLER_AFTER_THE_FIRST_SIGNAL = SOLUTION.replace(
    "        for sig, old in previous.items():  # a second signal acts as it did before this install\n"
    "            signal.signal(sig, old)\n", "")

ONLY_SIGTERM = SOLUTION.replace("for sig in (signal.SIGTERM, signal.SIGINT):", "for sig in (signal.SIGTERM,):")


def test_the_mistakes_are_what_they_say():
    for wrong in (EXITS_IN_THE_HANDLER, RESTORES_THE_DEFAULT, KEEPS_ITS_HANDLER_AFTER_THE_FIRST_SIGNAL, ONLY_SIGTERM):
        assert wrong != SOLUTION


def test_the_solution_passes(capsys):
    ok, out = _run("ex06_4", SOLUTION, capsys)
    assert ok is True and out.startswith("✓ ex06_4"), out


@pytest.mark.parametrize("code, hint", [
    (COPIED_FROM_THE_NOTEBOOK, "a second SIGTERM did not reach the handler that was there before"),
    (EXITS_IN_THE_HANDLER, "SIGTERM raised SystemExit in the middle of what the program was doing"),
    (LOCAL_FLAG, "an assignment inside a function makes a new local name"),
    (RESTORES_THE_DEFAULT, "not the one that was there before: keep what signal.signal returned"),
    (KEEPS_ITS_HANDLER_AFTER_THE_FIRST_SIGNAL, "a second SIGTERM did not reach the handler that was there before"),
    (ONLY_SIGTERM, "the handler of SIGINT is still the one that was there before"),
], ids=["copied", "exits", "local-flag", "restores-default", "keeps-handler", "only-sigterm"])
def test_a_plausible_mistake_is_named(code, hint, capsys):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    ok, out = _run("ex06_4", code, capsys)
    assert ok is False and out.startswith("✗ ex06_4") and hint in out, out
    assert {sig: signal.getsignal(sig) for sig in before} == before, "the check puts the session's handlers back"
