"""Output paths: checked before the work, written atomically, never over an input.

Every command writes through :func:`atomic_path` (``pipeline.inputs.reader`` re-exports it
with ``write_frame_atomic`` / ``write_text_atomic`` / ``write_bytes_atomic``), and commands
check their paths first with :func:`check_run_paths`:

* an output that is an input of the same run (``--rejects leads.csv -i leads.csv``, ``-o``
  equal to ``-i``, the events file...) or another output of it is refused before anything is
  read or written;
* a symbolic link is never replaced (refused, naming where it points), unless it leads to a
  character device or a FIFO;
* a character device or FIFO (``-o /dev/stdout``, ``/dev/null``, a named pipe) is written
  through: the output is built in a temporary file, then appended to the device at the end
  (``/dev/stdout`` redirected to a file too: it is never replaced);
* a directory, a block device or a socket is refused; so is a folder that cannot be written;
* a full disk, a read-only file system or a file-size limit hit while writing is one message
  naming the output (exit 2), and the previous output stays as it was;
* a run that was killed leaves a hidden ``.<name>.<random>.tmp`` beside its output; the
  next write of that output removes it (a temp file is locked while its run is alive, so the
  temp file of a run still writing is left alone).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from pipeline.errors import UserError

TEMP_SUFFIX = ".tmp"
STANDARD_STREAMS = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")
# errors that can only come from writing: reported as the output's fault
WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is too large"}


def path_kind(path: Path) -> str:
    """``missing``, ``file``, ``dir``, ``symlink`` (to anything but a device/FIFO),
    ``stream`` (a character device or FIFO, reached directly or through a link) or
    ``other`` (a block device, a socket)."""
    if os.path.abspath(path).startswith(STANDARD_STREAMS):
        return "stream"  # /dev/stdout is a link to the shell's fd, whatever that is
    try:
        link = path.lstat()
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "other"
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        return "stream"
    if stat.S_ISLNK(link.st_mode):
        return "symlink"
    if stat.S_ISDIR(link.st_mode):
        return "dir"
    if stat.S_ISREG(link.st_mode):
        return "file"
    return "other"


def check_output(target: str | Path, option: str = "output") -> None:
    """Refuse, before any work, an output that cannot or must not be written."""
    target = Path(target)
    kind = path_kind(target)
    if kind == "symlink":
        raise UserError(f"{option} {target} is a symbolic link (to {os.readlink(target)}): "
                        "refusing to replace it",
                        hint="give the path of the real file, or remove the link")
    if kind == "dir":
        raise UserError(f"{option} {target} is a directory", hint="give a file name")
    if kind == "other":
        raise UserError(f"{option} {target} is not a regular file (a block device or socket?)",
                        hint="give a file name")
    if kind == "stream":
        return
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{option} {target}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK) or (
            kind == "file" and not os.access(target.parent, os.W_OK | os.X_OK)):
        raise UserError(f"{option} {target}: the folder {folder} is not writable",
                        hint="choose another output path or fix the folder's permissions")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (through links, ``..`` or another spelling)."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_run_paths(inputs: Mapping[str, str | Path | None],
                    outputs: Mapping[str, str | Path | None]) -> None:
    """Refuse a run whose outputs overwrite one of its inputs or one another; then
    :func:`check_output` each output. Keys name the options (``--input``, ``--rejects``)."""
    given_in = {k: Path(v) for k, v in inputs.items() if v is not None}
    given_out = {k: Path(v) for k, v in outputs.items() if v is not None}
    names = list(given_out)
    for i, out_option in enumerate(names):
        out = given_out[out_option]
        if path_kind(out) == "stream":
            continue  # /dev/stdout twice, or /dev/null, is fine
        for in_option, source in given_in.items():
            if same_file(out, source):
                raise UserError(f"{out_option} {out} is also the {in_option} file of this run: "
                                "writing it would destroy the input",
                                hint=f"give {out_option} another path")
        for other_option in names[i + 1:]:
            if same_file(out, given_out[other_option]):
                raise UserError(f"{out_option} and {other_option} are the same file ({out}): "
                                "one would overwrite the other",
                                hint=f"give {other_option} another path")
    for option, out in given_out.items():
        check_output(out, option)


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove the temp files that killed runs left beside ``target`` (the ones no live run
    holds locked); returns them."""
    prefix = f".{target.name}."
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            if not (entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX)) \
                    or not entry.is_file(follow_symlinks=False):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live run is writing it
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            finally:
                os.close(fd)
    return removed


def write_error(target: Path, exc: OSError) -> UserError | None:
    """The one-line error of a failed write (disk full...), or None for other errors."""
    what = WRITE_ERRNOS.get(exc.errno or 0)
    if what is None:
        return None
    return UserError(f"cannot write {target}: {what}",
                     hint="free space or choose another output; the previous output is "
                     "unchanged")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically
    (a character device or FIFO is written through instead; see the module doc).

    A run killed half-way leaves at most a hidden ``.tmp`` file, never a partial output, and
    the next run removes it.
    """
    target = Path(target)
    check_output(target)
    stream = path_kind(target) == "stream"
    if not stream:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                   dir=None if stream else target.parent)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror}",
                        hint="choose another output path") from None
    tmp_path = Path(tmp)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "alive": remove_stale_temps skips it
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual mode
        try:
            yield tmp_path
            if stream:
                # appended: /dev/stdout redirected to a file (>> or >) keeps what is there
                with open(tmp_path, "rb") as source, open(target, "ab") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
            else:
                with open(tmp_path, "rb") as handle:
                    os.fsync(handle.fileno())
                os.replace(tmp_path, target)
        except OSError as exc:
            error = write_error(target, exc)
            if error is None:
                raise
            raise error from None
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_texts_all_or_nothing(folder: str | Path, texts: Mapping[str, str]) -> list[Path]:
    """Write ``{name: text}`` into ``folder``: every file or none.

    Each name is checked first (a planted symbolic link, a directory in the way: refused
    before anything is written); the files are written into a hidden staging folder inside
    ``folder`` and moved into place only when all are written, so a full disk leaves the
    previous files as they were."""
    folder = Path(folder)
    if path_kind(folder) not in ("missing", "dir"):
        raise UserError(f"--output {folder} is not a folder",
                        hint="give a folder for --format all")
    targets = {}
    for name, _ in texts.items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise UserError(f"output name {name!r} must be a plain file name")
        targets[name] = folder / name
        check_output(targets[name], f"--output {folder}:")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".staging.*" + TEMP_SUFFIX):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)  # a killed export's
    staging = Path(tempfile.mkdtemp(prefix=".staging.", suffix=TEMP_SUFFIX, dir=folder))
    try:
        for name, text in texts.items():
            with open(staging / name, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(staging / name, 0o644)
        for name, target in targets.items():
            os.replace(staging / name, target)
    except OSError as exc:
        error = write_error(folder, exc)
        if error is None:
            raise
        raise error from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return list(targets.values())


LOCK_FOLDER = Path(tempfile.gettempdir()) / "lead-scoring-output-locks"


@contextlib.contextmanager
def output_lock(*targets: str | Path) -> Iterator[None]:
    """Hold an exclusive lock per output for a whole run: a second run writing the same
    files waits, then runs, so the output and its rejects always come from one run (never
    the output of one run beside the rejects of another). The lock files live in the
    temporary folder (named by a hash of each output's real path), not beside the outputs;
    devices and pipes are not locked."""
    import hashlib

    keys = sorted({os.path.realpath(t) for t in targets if path_kind(Path(t)) != "stream"})
    with contextlib.suppress(OSError):
        LOCK_FOLDER.mkdir(mode=0o777, exist_ok=True)
    handles = []
    try:
        for key in keys:  # in one order: two runs never hold one lock each and wait
            name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
            try:
                fd = os.open(LOCK_FOLDER / name, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError:
                continue  # another user's lock folder: this run goes unserialised
            handles.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in handles:
            os.close(fd)
