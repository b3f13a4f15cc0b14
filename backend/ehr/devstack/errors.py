"""The devstack's one error: something the developer must fix, said in words they can act on."""

from __future__ import annotations

__all__ = ["StackError"]


class StackError(RuntimeError):
    """A stack service could not be found, installed, started or stopped.

    The message says what failed and what to do; ``log_tail`` carries the last lines of the
    service's log when there is one.
    """

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail
