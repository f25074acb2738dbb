"""The exception tree of alphacut.

Every error the library raises on purpose derives from :class:`AlphacutError`,
and each message says what went wrong *and* what to do about it::

    AlphacutError
    ├── OptionsError          an option has a value it cannot take (format, colour, cap...)
    ├── InputError            a bad input image (one file of a batch; the rest carry on)
    │   ├── DecodeError       not an image, corrupt, truncated, unsupported format
    │   └── ImageTooLargeError  over the megapixel cap (decompression bomb guard)
    ├── FolderError           the input and output folders of a run cannot be used as given
    ├── ModelError            model registry / download / verification problems
    │   ├── ModelNotFoundError  not in the cache: says which command fetches it
    │   ├── IntegrityError    a download or chunk failed its hash check
    │   └── RuntimeNotFoundError  the browser runtime (onnxruntime-web) is not in the cache
    ├── OutputError           the output cannot be written (exists, bad format, ...)
    ├── ProviderError         an execution provider (CUDA, TensorRT) is unusable
    └── MissingDependencyError  an optional part is not installed (Ray): says what to install

The CLI turns these into one line on stderr and a non-zero exit code; library code
never prints or calls ``sys.exit``.

In a run over many inputs (``cut`` with several files, ``batch``, ``watch``, the API)
one input's failure must never stop the others, whatever raised it: a damaged file can
make a decoder raise ``KeyError`` or ``struct.error``, a huge one ``MemoryError``, a file
where a folder should be ``NotADirectoryError``. :func:`input_failure` is that boundary:
it turns any ``Exception`` (never ``KeyboardInterrupt`` or ``SystemExit``) into the
:class:`AlphacutError` the input's record carries, with a message that says what to do.
"""

from __future__ import annotations

import errno

__all__ = [
    "AlphacutError",
    "DecodeError",
    "FolderError",
    "ImageTooLargeError",
    "InputError",
    "IntegrityError",
    "MissingDependencyError",
    "ModelError",
    "ModelNotFoundError",
    "OptionsError",
    "OutputError",
    "ProviderError",
    "RuntimeNotFoundError",
    "input_failure",
    "os_error_advice",
]


class AlphacutError(Exception):
    """Base class of every error alphacut raises on purpose."""


class OptionsError(AlphacutError):
    """An option has a value it cannot take (the message names the value and the choices)."""


class InputError(AlphacutError):
    """The input image cannot be used."""


class DecodeError(InputError):
    """The bytes are not a decodable image (corrupt, truncated, unsupported, empty)."""


class ImageTooLargeError(InputError):
    """The image has more pixels than the configured cap allows."""


class FolderError(AlphacutError):
    """The input and output folders of a run cannot be used as given (missing, nested)."""


class ModelError(AlphacutError):
    """A model cannot be found, fetched or verified."""


class ModelNotFoundError(ModelError):
    """The model is not in the local cache."""


class IntegrityError(ModelError):
    """Downloaded data does not match its expected hash."""


class RuntimeNotFoundError(ModelError):
    """The browser runtime (onnxruntime-web) is not in the cache: says which command fetches it."""


class OutputError(AlphacutError):
    """The output cannot be written."""


class ProviderError(AlphacutError):
    """An execution provider that was asked for cannot be used."""


class MissingDependencyError(AlphacutError):
    """An optional part of alphacut is not installed (the message says what to install)."""


def os_error_advice(exc: OSError) -> str:
    """What went wrong in an ``OSError`` and what to do, in a few words for a message."""
    what = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{what}{where}: the disk is full; free some space and run the same command again"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{what}{where}: the folder is not writable; make it writable and run the same command again"
                " (what is done is kept), or choose another output folder")
    if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        return f"{what}{where}: a file or folder is in the way; move it or choose another output folder"
    return f"{what}{where}"


def input_failure(exc: Exception, *, doing: str = "cutting out") -> AlphacutError:
    """The error one input's record gets for ``exc``, raised while ``doing`` (reading, writing...) it.

    alphacut's own errors pass through unchanged. The rest are classified: out of
    memory, an operating-system error (with :func:`os_error_advice`), or an
    unexpected error, which for an input is nearly always a damaged file.
    """
    if isinstance(exc, AlphacutError):
        return exc
    if isinstance(exc, MemoryError):
        return InputError(
            f"not enough memory while {doing} this image: close other programs, or lower --max-megapixels"
            " to refuse images this large"
        )
    if isinstance(exc, OSError):
        text = f"cannot finish {doing} this image: {os_error_advice(exc)}"
        return OutputError(text) if doing.startswith("writing") else InputError(text)
    detail = " ".join(str(exc).split())[:120]
    return InputError(
        f"unexpected {type(exc).__name__} while {doing} this image"
        + (f" ({detail})" if detail else "")
        + ": the file is probably damaged; re-export it from its source (if it opens elsewhere, please report"
        " it with the file)"
    )
