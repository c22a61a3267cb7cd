"""Folders only their owner can enter: the state folder, job logs, the socket folder.

A folder is private when it is a real directory (not a symlink), belongs to the
supervisor's user and grants nothing to group or others. ``mkdir(mode=0o700)`` can only
lose bits to the umask, never gain them, so a folder we create is private whatever the
umask. An existing folder of ours that is too open is either tightened (state and logs:
they hold nothing anyone else should have read) or refused with the command that fixes
it (the socket folder, which a user may share on purpose and should fix knowingly).
A folder of another user is always refused: we cannot make it private.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from supervisor.errors import ConfigError

PRIVATE_DIR_MODE = 0o700


def prepare_private_dir(path: Path, *, key: str, what: str, tighten: bool) -> None:
    """Create ``path`` (0700, with its parents) or check that an existing one is ours.

    ``key`` starts every error message (e.g. ``"FILE: state_dir"``); ``what`` names the
    folder in it. With ``tighten`` an existing folder of ours is chmod-ed to 0700;
    without, a folder open to others is refused.
    """
    mode = own_dir(path, key=key, what=what)
    if not mode & 0o077:
        return
    if not tighten:
        raise ConfigError(f"{key}: {path} is not private (mode {mode:04o}); run: chmod 700 {path}")
    make_private(path, mode, key=key, what=what)


def own_dir(path: Path, *, key: str, what: str) -> int:
    """Create ``path`` (0700) if missing; check it is a directory of ours; return its mode."""
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        info = path.lstat()
    except FileExistsError:  # mkdir(exist_ok=True) says so for a file in the way
        raise ConfigError(f"{key}: {path} is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{key}: cannot create {what} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{key}: {path} is not a directory")
    if info.st_uid != os.getuid():
        raise ConfigError(
            f"{key}: {path} belongs to uid {info.st_uid}, not to us (uid {os.getuid()}); "
            f"refusing to use it as {what}"
        )
    return stat.S_IMODE(info.st_mode)


def make_private(path: Path, mode: int, *, key: str, what: str) -> None:
    """chmod a folder of ours (currently ``mode``) to 0700 when it grants anything more."""
    if not mode & 0o077:
        return
    try:
        os.chmod(path, PRIVATE_DIR_MODE)
    except OSError as exc:
        raise ConfigError(
            f"{key}: cannot make {what} {path} private (mode {mode:04o}): {exc.strerror}"
        ) from None
