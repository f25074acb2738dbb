"""What counts as an input, where inputs are found, and what their outputs are called."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from ..errors import FolderError
from ..options import OutputFormat

__all__ = [
    "EXTENSIONS",
    "IMAGE_SUFFIXES",
    "OUTPUT_KINDS",
    "check_folders",
    "is_hidden",
    "is_image",
    "looks_like_output",
    "output_file_name",
    "scan",
]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif"}
)
# The file extension of each output format.
EXTENSIONS: dict[OutputFormat, str] = {"png": "png", "webp": "webp", "jpeg": "jpg"}
# The tags ``cut`` puts in its output names (NAME-cutout.png, NAME-mask.png).
OUTPUT_KINDS = ("cutout", "mask")


def is_image(path: PurePath) -> bool:
    """Whether a file's name says it is an image alphacut reads (the content is sniffed later)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_hidden(rel: PurePath) -> bool:
    """Whether a path (relative to the folder scanned) is or lies in a hidden file or folder."""
    return any(part.startswith(".") for part in rel.parts)


def looks_like_output(name: str) -> bool:
    """Whether a file name is one ``cut`` writes (``NAME-cutout.png``, ``NAME-mask.webp``...):
    such files are never taken as inputs, so running ``cut`` again never cuts its own outputs."""
    stem, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in EXTENSIONS.values() and stem.endswith(tuple(f"-{k}" for k in OUTPUT_KINDS))


def output_file_name(source: PurePath, ext: str, *, kind: str | None = None, keep_suffix: bool = False,
                     number: int = 1) -> str:
    """The one naming scheme of outputs: ``STEM[-SUFFIX][-N][-KIND].EXT``.

    ``STEM`` is the input's name without its extension; ``keep_suffix`` adds that
    extension (``a-jpg``) when another input of the run shares the stem; ``number``
    (from 2) tells apart names that still meet; ``kind`` is ``cut``'s tag
    (``cutout``, ``mask``): ``batch`` mirrors folders and needs none.
    """
    name = source.stem
    if keep_suffix:
        name += "-" + source.suffix.lstrip(".").lower()
    if number > 1:
        name += f"-{number}"
    if kind is not None:
        name += f"-{kind}"
    return f"{name}.{ext}"


def scan(in_dir: Path, out_dir: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Image files under ``in_dir`` (recursive, sorted) and the other files, ignored.

    Hidden files and folders are skipped, and so is ``out_dir`` when it lies inside.
    """
    in_dir = Path(in_dir)
    out_resolved = Path(out_dir).resolve() if out_dir is not None else None
    images: list[Path] = []
    ignored: list[Path] = []
    for root, dirs, files in os.walk(in_dir):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and (out_resolved is None or (root_path / d).resolve() != out_resolved)
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = root_path / name
            if not path.is_file():
                continue
            (images if is_image(path) else ignored).append(path)
    return sorted(images), sorted(ignored)


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """Refuse an input that is not a folder, and an output folder that holds the input folder
    (the outputs would land among the inputs, and the next scan would take them as inputs)."""
    if not Path(in_dir).is_dir():
        raise FolderError(f"{in_dir} is not a folder: batch takes an input folder and an output folder")
    in_res, out_res = Path(in_dir).resolve(), Path(out_dir).resolve()
    if in_res == out_res or in_res.is_relative_to(out_res):
        raise FolderError(
            f"the output folder {out_dir} contains the input folder {in_dir}: choose an output"
            " folder outside it, so inputs are never overwritten"
        )
