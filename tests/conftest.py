"""Shared fixtures, and the CI guard: under CI=true a skipped model or browser test fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"
_GUARDED = ("model", "browser")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def isnet_model_path() -> Path:
    """The real ISNet model (medium) from the alphacut cache; skipped when it is absent."""
    from alphacut import models

    try:
        return models.model_path(os.environ.get("ALPHACUT_TEST_MODEL_NAME", "medium"))
    except models.ModelNotFoundError as exc:
        pytest.skip(f"real model missing: {exc}")


@pytest.fixture(scope="session")
def session(isnet_model_path: Path):  # type: ignore[no-untyped-def]
    """One engine session for the whole test run (loading the model once)."""
    from alphacut import Session

    return Session(os.environ.get("ALPHACUT_TEST_MODEL_NAME", "medium"))


_skipped_guarded: list[str] = []
_MODEL_FIXTURES = {"session", "isnet_model_path"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that loads the real model must say so (``@pytest.mark.model``): the CI guard
    below, and ``-m "not model"``, rely on the marker."""
    unmarked = [item.nodeid for item in items
                if _MODEL_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("model") is None]
    if unmarked:
        raise pytest.UsageError(f"these tests load the real model without @pytest.mark.model: {', '.join(unmarked)}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and any(m in report.keywords for m in _GUARDED):
        _skipped_guarded.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped_guarded:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(
                f"CI=true but {len(_skipped_guarded)} model/browser test(s) were skipped, e.g. "
                f"{_skipped_guarded[0]}: failing the run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
