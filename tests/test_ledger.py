"""The batch ledger: one row per input, upserts, fingerprints, persistence."""

from __future__ import annotations

import dataclasses
import sqlite3
import typing
from pathlib import Path
from typing import Any, Self

import pytest

from alphacut import Options
from alphacut.errors import OutputError
from alphacut.ledger import LEDGER_NAME, Ledger, fingerprint


def test_one_row_per_input_and_attempts_count(tmp_path: Path) -> None:
    with Ledger.in_folder(tmp_path) as ledger:
        ledger.record("a.jpg", sha256="x", size=1, mtime_ns=2, options="o", status="failed", error="bad")
        ledger.record("a.jpg", sha256="y", size=3, mtime_ns=4, options="o", status="done", output="a.png",
                      confidence=0.9, needs_review=False, warnings=["w"])
        ledger.record("b/c.png", sha256="z", size=5, mtime_ns=6, options="o", status="done", output="b/c.png")
        rows = list(ledger.entries())
    assert [r.path for r in rows] == ["a.jpg", "b/c.png"]
    a = rows[0]
    assert (a.status, a.sha256, a.output, a.error, a.attempts, a.warnings) == ("done", "y", "a.png", None, 2, ["w"])
    assert a.needs_review is False and a.confidence == pytest.approx(0.9)


def test_persists_across_reopen_and_outputs_map(tmp_path: Path) -> None:
    with Ledger.in_folder(tmp_path) as ledger:
        ledger.record("a.jpg", sha256="x", size=1, mtime_ns=2, options="o", status="done", output="a.png")
        ledger.record("b.jpg", sha256="x", size=1, mtime_ns=2, options="o", status="failed", error="e")
    assert (tmp_path / LEDGER_NAME).is_file()
    with Ledger.in_folder(tmp_path) as ledger:
        assert ledger.outputs() == {"a.png": "a.jpg"}
        ledger.touch("a.jpg", size=10, mtime_ns=20)
        entry = ledger.get("a.jpg")
        assert entry is not None and (entry.size, entry.mtime_ns, entry.sha256) == (10, 20, "x")
        assert ledger.get("missing.jpg") is None


def test_rejects_unknown_status(tmp_path: Path) -> None:
    with Ledger.in_folder(tmp_path) as ledger, pytest.raises(ValueError, match="status"):
        ledger.record("a", sha256="", size=0, mtime_ns=0, options="o", status="running")


def test_other_schema_version_is_a_clear_error(tmp_path: Path) -> None:
    Ledger.in_folder(tmp_path).close()
    db = sqlite3.connect(tmp_path / LEDGER_NAME)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(OutputError, match="schema 99"):
        Ledger.in_folder(tmp_path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / LEDGER_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutputError, match="move it away"):
        Ledger.in_folder(tmp_path)


def _other_value(field: dataclasses.Field[Any], tp: Any) -> Any:
    """A valid value of an Options field other than its default."""
    choices = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Literal:
        return next(c for c in choices if c != field.default)
    if tp is bool:
        return not field.default
    if field.name in _LISTING_VALUES:
        return _LISTING_VALUES[field.name]
    if tp is float:
        return field.default / 2
    return "#123456"  # background: a colour


# Listing values other than the defaults (the base below has a crop and a canvas, which they need).
_LISTING_VALUES: dict[str, Any] = {"margin": "5%", "canvas": "4:5", "fill": 85.0,
                                   "background_image": "backdrop.jpg", "shadow_opacity": 0.5, "shadow_blur": 3.0,
                                   "shadow_offset": "1,2", "quality": 80}


def test_fingerprint_follows_every_option_and_the_model() -> None:
    hints = typing.get_type_hints(Options)
    for base_options in (Options(), Options(crop=True, canvas="1:1")):
        base = fingerprint(base_options, "a" * 64)
        assert base == fingerprint(base_options, "a" * 64)
        assert base != fingerprint(base_options, "b" * 64)
        for field in Options.fields():
            other = _other_value(field, hints[field.name])
            if isinstance(other, bool):
                other = not getattr(base_options, field.name)
            if field.name == "margin" and not base_options.crop:
                continue  # a margin needs a crop: checked with the second base
            if field.name in ("fill", "align", "upscale") and base_options.canvas is None:
                continue
            changed = base_options.replace(**{field.name: other})
            assert fingerprint(changed, "a" * 64) != base, f"changing {field.name} must redo the outputs"


def test_fingerprint_of_default_listing_values_is_the_one_before_listing_existed() -> None:
    """Folders cut out before the listing options (and ``edges``) existed are not redone: at
    their defaults those options are left out of the fingerprint."""
    import hashlib
    import json

    from alphacut.options import LISTING_FIELDS

    later = (*LISTING_FIELDS, "edges")
    before = {k: v for k, v in dataclasses.asdict(Options(format="webp")).items() if k not in later}
    payload = json.dumps({"options": before, "model": "a" * 64}, sort_keys=True, default=str)
    assert fingerprint(Options(format="webp"), "a" * 64) == hashlib.sha256(payload.encode()).hexdigest()[:16]


@pytest.mark.parametrize(("sqlite_says", "advice"), [
    ("attempt to write a readonly database", "make it writable and run the same command again"),
    ("unable to open database file", "make it writable and run the same command again"),
    ("database or disk is full", "free some space on that disk and run the same command again"),
])
def test_a_read_only_or_full_out_keeps_the_resume_state(tmp_path: Path, sqlite_says: str, advice: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger.in_folder(tmp_path) as ledger:
        ledger.record("a.jpg", sha256="x", size=1, mtime_ns=2, options="o", status="done", output="a.png")

        class Refusing:
            def __init__(self, db: sqlite3.Connection) -> None:
                self.db = db

            def execute(self, *args: object) -> None:
                raise sqlite3.OperationalError(sqlite_says)

            def __enter__(self) -> Self:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        real = ledger._db
        monkeypatch.setattr(ledger, "_db", Refusing(real))
        with pytest.raises(OutputError) as info:
            ledger.record("b.jpg", sha256="y", size=1, mtime_ns=2, options="o", status="failed", error="e")
        monkeypatch.setattr(ledger, "_db", real)
    message = str(info.value)
    assert advice in message and "ledger keeps what is done" in message and "move it away" not in message
    with Ledger.in_folder(tmp_path) as ledger:  # the resume state is intact
        assert ledger.get("a.jpg") is not None and ledger.get("b.jpg") is None
