"""The one exception type users see.

Every problem caused by the user's input is raised as :class:`AutoscError`
with a message that says what is wrong and what to do; the CLI prints it as
one line and exits with code 2 instead of showing a traceback.
"""


class AutoscError(ValueError):
    """A user-facing error: bad input, impossible request, unreadable file."""


class UnreachableBudget(AutoscError):
    """A budget below the smallest cost the adapted network can reach (every adapted map at its floor).

    Its own type so that a caller comparing methods (benchmarks/trained.py) can record it as a finding
    without reading the message.
    """


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none), to quote inside an AutoscError."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr: something the user should know that does not stop the command (a
    cache that cannot be written). Printed directly, not through :mod:`warnings`, whose format takes two lines."""
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
