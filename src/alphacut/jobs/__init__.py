"""The jobs layer: how alphacut runs many images and writes them, for every surface.

``alphacut cut``, ``alphacut batch``, ``alphacut watch`` and the Ray engine all take
their inputs, names, skip rule and run loop from here:

- :mod:`~alphacut.jobs.inputs`: what counts as an input (suffixes, hidden files, a
  file named like an output), the folder scan, the one output-naming scheme and the
  guard on input and output folders.
- :mod:`~alphacut.jobs.run`: the per-input boundary (:func:`load_input`,
  :func:`write_output`) and :func:`cut_and_write`, the loop that cuts out many images
  in a pipeline and writes each one as soon as it is ready.
- :mod:`~alphacut.jobs.folder`: a folder cut out into a mirrored output folder with a
  ledger (:class:`FolderJob`): the skip/resume rule, the report.
"""

from __future__ import annotations

from .folder import REPORT_CSV, REPORT_JSON, FolderJob, Job, Report, Result, Status, is_finished, output_name
from .inputs import (
    EXTENSIONS,
    IMAGE_SUFFIXES,
    check_folders,
    is_hidden,
    is_image,
    looks_like_output,
    output_file_name,
    scan,
)
from .run import cut_and_write, load_input, write_output

__all__ = [
    "EXTENSIONS",
    "IMAGE_SUFFIXES",
    "REPORT_CSV",
    "REPORT_JSON",
    "FolderJob",
    "Job",
    "Report",
    "Result",
    "Status",
    "check_folders",
    "cut_and_write",
    "is_finished",
    "is_hidden",
    "is_image",
    "load_input",
    "looks_like_output",
    "output_file_name",
    "output_name",
    "scan",
    "write_output",
]
