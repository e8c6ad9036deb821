"""
Load errors that name their cause, and the sb3_fpo version a model was saved with.

:meth:`sb3_fpo.FPO.load` turns SB3's and torch's low-level exceptions into these messages.
"""

from __future__ import annotations

import json
import pathlib
import zipfile
from typing import Any


def sb3_fpo_version() -> str:
    """This package's version (``sb3_fpo/version.txt``)."""
    return (pathlib.Path(__file__).parent / "version.txt").read_text().strip()


def saved_version(path: Any) -> str | None:
    """The sb3_fpo version recorded in a saved model (``None`` if absent or unreadable)."""
    try:
        if isinstance(path, (str, pathlib.Path)) and not pathlib.Path(path).exists():
            path = f"{path}.zip"
        with zipfile.ZipFile(path) as archive:  # type: ignore[arg-type]
            return json.loads(archive.read("data")).get("sb3_fpo_version")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def corrupted(path: Any, error: BaseException) -> str:
    """The message for a file that is not a readable FPO save."""
    return (
        f"Could not load an FPO model from {path!r}: the file is corrupted or was not written by FPO.save() "
        f"({type(error).__name__}: {error})."
    )


def incompatible(path: Any, reason: str) -> str:
    """The message for a save whose policy does not fit this version, naming the version that wrote it."""
    version = saved_version(path)
    written = f"sb3_fpo {version}" if version else "an sb3_fpo version that did not record itself"
    return (
        f"Could not load an FPO model from {path!r}: it was written by {written} and {reason}. This is sb3_fpo "
        f"{sb3_fpo_version()}; load it with the version that saved it, or pass the changed entries in "
        "custom_objects={'policy_kwargs': ...}."
    )
