"""The exception tree of alphacut.

Every error the library raises on purpose derives from :class:`AlphacutError`,
and each message says what went wrong *and* what to do about it::

    AlphacutError
    ├── InputError            a bad input image (one file of a batch; the rest carry on)
    │   ├── DecodeError       not an image, corrupt, truncated, unsupported format
    │   └── ImageTooLargeError  over the megapixel cap (decompression bomb guard)
    ├── ModelError            model registry / download / verification problems
    │   ├── ModelNotFoundError  not in the cache: says which command fetches it
    │   └── IntegrityError    a download or chunk failed its hash check
    ├── OutputError           the output cannot be written (exists, bad format, ...)
    └── ProviderError         an execution provider (CUDA, TensorRT) is unusable

The CLI turns these into one line on stderr and a non-zero exit code; library code
never prints or calls ``sys.exit``.
"""

from __future__ import annotations

__all__ = [
    "AlphacutError",
    "InputError",
    "DecodeError",
    "ImageTooLargeError",
    "ModelError",
    "ModelNotFoundError",
    "IntegrityError",
    "OutputError",
    "ProviderError",
]


class AlphacutError(Exception):
    """Base class of every error alphacut raises on purpose."""


class InputError(AlphacutError):
    """The input image cannot be used."""


class DecodeError(InputError):
    """The bytes are not a decodable image (corrupt, truncated, unsupported, empty)."""


class ImageTooLargeError(InputError):
    """The image has more pixels than the configured cap allows."""


class ModelError(AlphacutError):
    """A model cannot be found, fetched or verified."""


class ModelNotFoundError(ModelError):
    """The model is not in the local cache."""


class IntegrityError(ModelError):
    """Downloaded data does not match its expected hash."""


class OutputError(AlphacutError):
    """The output cannot be written."""


class ProviderError(AlphacutError):
    """An execution provider that was asked for cannot be used."""
