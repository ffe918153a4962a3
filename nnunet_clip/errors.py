"""The errors the command line reports in one line: bad input, and outputs the machine cannot take."""
from __future__ import annotations

import errno


class InputError(Exception):
    """Bad input from the user: a file, folder or argument. The message names it and what is wrong."""


OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                           errno.EIO})
"""OSError numbers of a full disk, a file size limit, a read-only or forbidden folder, a failed write."""


def cannot_write(error: BaseException) -> bool:
    """Whether ``error`` is the machine refusing a write (``OUTPUT_ERRNOS``), not a bug."""
    return isinstance(error, OSError) and error.errno in OUTPUT_ERRNOS


def one_line(error: BaseException) -> str:
    """``<file>: <what is wrong>`` of an InputError or of an OSError."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__
