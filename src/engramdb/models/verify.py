"""Packaged model files are read once and checked against a sha256 pinned in engramdb."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engramdb.errors import ModelError

__all__ = ["verified_bytes"]


def verified_bytes(path: Path, sha256: str, what: str, package: str) -> bytes:
    """The bytes of the model file `path`, whose sha256 must be `sha256`.

    Args:
        what: names the model in errors ("embedding model", "e5 model").
        package: the pinned package that ships the file, named in the advice to reinstall it.

    Raises:
        ModelError: the file cannot be read, or its sha256 differs.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {what} {path}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelError(
            f"{what} {path} failed its integrity check: expected sha256 {sha256}, "
            f"got {actual}; reinstall {package}"
        )
    return data
