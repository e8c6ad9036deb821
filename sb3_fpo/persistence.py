"""
Load errors that name their cause, and the sb3_fpo version a model was saved with.

:meth:`sb3_fpo.FPO.load` turns SB3's and torch's low-level exceptions into these messages.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import pickle
import zipfile
from collections.abc import Iterator
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


def check_model_file(path: Any) -> None:
    """``FileNotFoundError`` with the path as given when no model file is there (SB3 also tries ``path + ".zip"``)."""
    if isinstance(path, (str, pathlib.Path)):
        given = pathlib.Path(path)
        with_suffix = given.with_name(given.name + ".zip")
        if not given.exists() and (given.suffix == ".zip" or not with_suffix.exists()):
            tried = "" if given.suffix == ".zip" else f" (nor at {str(with_suffix)!r})"
            raise FileNotFoundError(f"No FPO model file at {str(path)!r}{tried}.")


@contextlib.contextmanager
def clear_load_errors(path: Any) -> Iterator[None]:
    """Turn the exceptions of SB3's and torch's loaders into ``ValueError`` messages that name the cause."""
    try:
        yield
    except TypeError as error:
        # The policy class refused a saved keyword argument (FlowPolicy(**policy_kwargs))
        if "keyword argument" not in str(error):
            raise
        raise ValueError(incompatible(path, f"its policy_kwargs are not accepted: {error}")) from error
    except RuntimeError as error:
        if "Error(s) in loading state_dict" not in str(error):  # else: torch could not read policy.pth
            raise ValueError(corrupted(path, error)) from error
        raise ValueError(incompatible(path, f"its parameters do not fit the policy: {error}")) from error
    except (AssertionError, ValueError) as error:
        # SB3's own words for a file that is not a zip, or a zip without its "data" entry
        if "wasn't a zip-file" not in str(error) and "No data found" not in str(error):
            raise
        raise ValueError(corrupted(path, error)) from error
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as error:
        raise ValueError(corrupted(path, error)) from error
