"""Fault injection for the fault class of the bad-input suite (tests only; deploykit has no hook for it).

``install(folder, ...)`` wraps the ``os``/``io`` functions that change files (create, write, fsync, rename,
unlink, mkdir, rmdir) so that every call on a path under ``folder`` is one numbered *step*. At step ``kill_at``
the process SIGKILLs itself (a write is cut in half first: a torn write); from step ``enospc_from`` on, every
call that needs space fails with ENOSPC, as on a full disk (only calls on paths containing ``enospc_match``, if
given). ``count_to`` records the steps taken.

``kill_each`` (``--kill-each DIR``) kills at *every* step in one run, cheaply: before each step the process forks;
the child is SIGKILLed right there (after half of its write, for a write) and the folder it leaves is copied to
``DIR/<step>``; the parent undoes the half write (if any), takes the step and goes on. So the export is
computed once, and ``DIR/1 .. DIR/N`` are what a SIGKILL at each step leaves; the run's own result goes to
``DIR/done``.

As a script it runs the deploykit CLI under these faults::

    python faults.py --watch OUT [--kill-at K | --enospc-from K | --kill-each DIR] [--count-to FILE] -- export se ...
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import errno
import io
import os
import signal
import sys

_SPACE = {"open", "write", "mkdir", "open-file"}  # the calls a full disk refuses


def install(folder, kill_at: int | None = None, enospc_from: int | None = None, count_to: str | None = None,
            kill_each: str | None = None, enospc_match: str | None = None):
    root = os.path.realpath(folder)
    steps: list[str] = []
    real = {name: getattr(os, name) for name in ("open", "write", "fsync", "replace", "rename", "unlink", "remove",
                                                 "mkdir", "rmdir")}
    real_open = io.open

    def inside(path) -> bool:
        try:
            resolved = os.path.realpath(os.fspath(path))
        except TypeError:
            return False
        return resolved == root or resolved.startswith(root + os.sep)

    def fd_inside(fd) -> str | None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        return path if inside(path) else None

    busy = []  # set while the fork machinery itself moves folders: those calls are not steps

    def step(kind: str, path, fd: int | None = None) -> str | None:
        """None: go on; "kill": this is the step to die at; "enospc": fail for lack of space."""
        if busy:
            return None
        steps.append(f"{kind} {os.path.relpath(os.fspath(path), root)}")
        n = len(steps)
        if kill_each is not None:
            busy.append(True)
            try:
                child = _fork_and_kill(root, os.path.join(kill_each, str(n)), fd if kind == "write" else None)
            finally:
                busy.clear()
            if child:
                return "kill"  # the child: die at this step
        if kill_at is not None and n == kill_at:
            return "kill"
        if (enospc_from is not None and n >= enospc_from and kind in _SPACE
                and (enospc_match is None or enospc_match in os.fspath(path))):
            return "enospc"
        return None

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))

    def wrap_path(name):
        def wrapper(path, *args, **kwargs):
            if name == "mkdir" and os.path.exists(path):
                return real[name](path, *args, **kwargs)  # EEXIST, as the kernel says before it needs any space
            if inside(path):
                verdict = step(name, path)
                if verdict == "kill":
                    die()
                if verdict == "enospc":
                    full(path)
            return real[name](path, *args, **kwargs)
        return wrapper

    def wrap_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            verdict = step("open", path)
            if verdict == "kill":
                die()
            if verdict == "enospc" and flags & os.O_CREAT:
                full(path)
        return real["open"](path, flags, *args, **kwargs)

    def wrap_fd(name):
        def wrapper(fd, *args, **kwargs):
            path = fd_inside(fd)
            if path is not None:
                verdict = step(name, path, fd)
                if verdict == "kill":
                    if name == "write":  # a torn write: half the data reaches the file, then the process dies
                        data = args[0]
                        real["write"](fd, data[: max(len(data) // 2, 1)])
                    die()
                if verdict == "enospc":
                    full(path)
            return real[name](fd, *args, **kwargs)
        return wrapper

    def wrap_io_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            verdict = step("open-file", file)
            if verdict == "kill":
                die()
            if verdict == "enospc":
                full(file)
        return real_open(file, mode, *args, **kwargs)

    for name in ("replace", "rename", "unlink", "remove", "mkdir", "rmdir"):
        setattr(os, name, wrap_path(name))
    os.open = wrap_open
    os.write = wrap_fd("write")
    os.fsync = wrap_fd("fsync")
    io.open = builtins.open = wrap_io_open
    if count_to:
        def save():
            with real_open(count_to, "w") as handle:
                handle.write("\n".join(steps) + "\n")
        atexit.register(save)

    def restore():
        for name, function in real.items():
            setattr(os, name, function)
        io.open = builtins.open = real_open

    return steps, restore


@contextlib.contextmanager
def injected(folder, **faults):
    """``install`` for the block only, in this process (e.g. ``enospc_from=1``: the disk is full under ``folder``)."""
    steps, restore = install(folder, **faults)
    try:
        yield steps
    finally:
        restore()


def _fork_and_kill(root: str, crash_dir: str, fd: int | None = None) -> bool:
    """Fork; the child returns True (it is to die now), the parent waits, copies what the child left to
    ``crash_dir`` and undoes the child's half write (on ``fd``, whose offset the two share), then returns False."""
    import shutil

    if fd is not None:
        offset, size = os.lseek(fd, 0, os.SEEK_CUR), os.fstat(fd).st_size
    pid = os.fork()
    if pid == 0:
        return True
    _, status = os.waitpid(pid, 0)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        raise SystemExit(f"the child at {crash_dir} was not killed (status {status})")
    shutil.copytree(root, crash_dir, symlinks=True)
    if fd is not None:
        os.ftruncate(fd, size)
        os.lseek(fd, offset, os.SEEK_SET)
    return False


def main(argv: list[str]) -> None:
    split = argv.index("--")
    options, cli_args = argv[:split], argv[split + 1:]
    settings = {"watch": None, "kill_at": None, "enospc_from": None, "count_to": None, "kill_each": None}
    for key, value in zip(options[::2], options[1::2]):
        settings[key.lstrip("-").replace("-", "_")] = value
    install(settings["watch"], kill_at=int(settings["kill_at"]) if settings["kill_at"] else None,
            enospc_from=int(settings["enospc_from"]) if settings["enospc_from"] else None,
            count_to=settings["count_to"], kill_each=settings["kill_each"])
    from deploykit.cli import main as cli

    try:
        cli(args=cli_args, prog_name="deploykit")
    finally:
        if settings["kill_each"]:
            import shutil

            shutil.copytree(settings["watch"], os.path.join(settings["kill_each"], "done"), symlinks=True)


if __name__ == "__main__":
    main(sys.argv[1:])
