"""The fork server of the crash tests must not let one SIGKILLed child wedge every later one."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.api._crash import ROOT

_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from tqdm import tqdm
    from tests.api import _forkserver

    tqdm.get_lock()  # made before forking, as the fork server's warm-up does
    pid = os.fork()
    if pid == 0:  # a server child killed while drawing a bar holds tqdm's lock forever
        tqdm.get_lock().acquire()
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    for own in (False, True):
        pid = os.fork()
        if pid == 0:
            if own:
                _forkserver._own_tqdm_lock()
            signal.alarm(5)  # a wedged child dies of SIGALRM
            with open(os.devnull, "w") as null:
                for _ in tqdm(range(3), file=null):
                    pass
            os._exit(0)
        print(own, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """
)


def test_a_child_killed_holding_the_progress_bar_lock_does_not_wedge_the_next() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(ROOT)], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split("\n")
    assert out[:2] == ["False -14", "True 0"], out  # shared lock: the next child hangs; own lock: it draws its bar
