"""alphacut: local AI background removal. The pixels never leave your machine.

>>> from alphacut import Session, Options, remove_background
>>> session = Session()                        # loads the model once
>>> cutout = remove_background("photo.jpg", session=session)
>>> cutout.image.save("photo-cutout.png")
"""

from __future__ import annotations

from .confidence import Confidence
from .errors import (
    AlphacutError,
    DecodeError,
    FolderError,
    ImageTooLargeError,
    InputError,
    IntegrityError,
    MissingDependencyError,
    ModelError,
    ModelNotFoundError,
    OptionsError,
    OutputError,
    ProviderError,
    RuntimeNotFoundError,
)
from .models import ModelSpec
from .options import Options
from .pipeline import Cutout, remove_background
from .presets import PRESETS
from .session import ModelSession, Refiner, Session

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AlphacutError",
    "Confidence",
    "Cutout",
    "DecodeError",
    "FolderError",
    "ImageTooLargeError",
    "InputError",
    "IntegrityError",
    "MissingDependencyError",
    "ModelError",
    "ModelNotFoundError",
    "ModelSession",
    "ModelSpec",
    "Options",
    "OptionsError",
    "OutputError",
    "ProviderError",
    "Refiner",
    "RuntimeNotFoundError",
    "Session",
    "__version__",
    "remove_background",
]
