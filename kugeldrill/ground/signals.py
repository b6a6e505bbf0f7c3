"""Signal dispositions every entry point sets explicitly.

A command started in the background by a non-interactive shell (`make test &`, nohup, CI
runners) inherits SIGINT as *ignored*, and Python then installs no KeyboardInterrupt
handler: Ctrl-C, or a test's SIGINT, would do nothing, and nothing would be healed or
cleaned up. Processes that must react to SIGINT say so here instead of trusting what they
inherited.
"""

from __future__ import annotations

import signal
import threading


def react_to_sigint() -> None:
    """SIGINT raises KeyboardInterrupt in this process, whatever disposition it inherited."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
