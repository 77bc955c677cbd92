"""Reading a report as batches: in this process, or, for a large file, in a parser process.

Parsing is Python work that holds the interpreter; writing is mostly the database's. For a file
of at least ``Settings.import_parser_process_mb`` the parser and the :class:`~.batches.Digest`
run in a child process (``python -m remedium.importers.worker``) that pickles each batch to its
standard output, so the two halves use two cores: while the importing process writes one batch,
the child parses the next ones. A thread reads up to 16 batches ahead (a few megabytes: memory
stays flat), so the parser does not stop while the importing process is busy. The child's
``ReportError`` is raised again here with the same file, place and message; any other failure
of the child, or the child dying, ends the import with an error, and leaving the ``with`` block
early (the writer failed) stops the child.

Protocol on the child's standard output: pickled tuples ``("info", ReportInfo)``, then
``("batch", Batch)`` any number of times, then ``("done",)``, or ``("error", message, where,
filename)`` / ``("crash", traceback)``. Meanwhile a thread of this process hashes the file: the
parser is the slower half, so the hash is off its path and ready when the batches are read.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from remedium.importers import limits
from remedium.importers.batches import BATCH, Batch, Digest
from remedium.importers.limits import open_report
from remedium.importers.records import ReportError, ReportInfo, ReportParser
from remedium.importers.registry import get_parser

_PIPE_BUFFER = 1 << 20


def file_sha256(path: Path, stop: threading.Event | None = None) -> str:
    """The SHA-256 of a file, read in blocks; ``""`` when ``stop`` is set before the end."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            if stop is not None and stop.is_set():
                return ""
            digest.update(block)
    return digest.hexdigest()


class _Hashing:
    """The SHA-256 of a file, computed by a thread (hashlib releases the interpreter while it
    hashes a block, so it runs beside the importing thread).

    The thread runs at the lowest priority (``nice`` 19, where the system lets a thread set its
    own): it takes the time the parser process and the importing thread leave unused, and not a
    share of the two cores from the parser, the slower half of a large import (Grype at 150,000:
    docs/imports.md, "How it stays fast"). Once they are done, it has a core to itself.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stop = threading.Event()
        self._digest = ""
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="report-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _lowest_priority()
        try:
            self._digest = file_sha256(self.path, self._stop)
        except OSError as exc:
            self._error = exc

    def result(self) -> str:
        """The hex digest, once the thread is done."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest

    def cancel(self) -> None:
        """Stop hashing (the import failed)."""
        self._stop.set()
        self._thread.join()


_LOWEST_PRIORITY = 19


def _lowest_priority() -> None:
    """Give the calling thread the lowest scheduling priority, where the system allows it (on
    Linux a thread has a nice value of its own; elsewhere the whole process would be lowered,
    so nothing is done)."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _LOWEST_PRIORITY)
    except OSError:  # not allowed here: hash at the usual priority
        return


@dataclass(slots=True)
class Report:
    """A report being read: its info, its batches, and its SHA-256 once they are all read."""

    info: ReportInfo
    batches: Iterator[Batch]
    path: Path
    hashing: _Hashing | None = None  # set when a parser process reads the report

    @property
    def in_parser_process(self) -> bool:
        """True when a parser process reads the report (the importing process then mostly
        waits for batches, and has time for other work)."""
        return self.hashing is not None

    def file_sha256(self) -> str:
        """The file's SHA-256 (hashed beside the parser process when there was one)."""
        return self.hashing.result() if self.hashing is not None else file_sha256(self.path)


@contextmanager
def report_batches(
    parser: ReportParser,
    path: Path,
    filename: str,
    *,
    in_process_below: int,
    device_name: str = "",
) -> Iterator[Report]:
    """The report's info and batches; a child process parses when the file is large.

    ``device_name`` names the device of a report that does not name its own (see ``Digest``).
    """
    if path.stat().st_size < in_process_below:
        with open_report(path) as stream:
            info, records = parser.parse(stream, filename)
            yield Report(info, _digest(records, stream, device_name), path)
        return
    with _child(parser.name, path, filename, device_name) as report:
        yield report


def _digest(records: Iterator[Any], stream: IO[bytes], device_name: str) -> Iterator[Batch]:
    digest = Digest(device_name)
    for record in records:
        digest.add(record)
        if digest.pending >= BATCH:
            yield digest.take(_tell(stream))
    yield digest.take(_END)


_END = 1 << 62  # "the whole file": the progress is capped at the file's size


def _tell(stream: IO[bytes]) -> int:
    """How far the parser has read (a parser that wraps the stream may have closed it)."""
    try:
        return stream.tell()
    except (OSError, ValueError):
        return _END


class _Child:
    """A parser process started for one report, with the thread that reads its messages and
    the thread that hashes the file."""

    def __init__(self, format_name: str, path: Path, filename: str, device_name: str) -> None:
        command = [sys.executable, "-m", "remedium.importers.worker", format_name, str(path)]
        command += [filename, device_name, limits.current().as_argument()]
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        # Our own interpreter and module; the path and names are arguments, never a shell.
        self.process = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            bufsize=_PIPE_BUFFER,
        )
        assert self.process.stdout is not None
        self.hashing = _Hashing(path)
        self.reader = _Reader(self.process.stdout, self.errors, filename)

    def stop(self) -> None:
        """Stop the process (if it still runs) and the reading thread; close the pipes."""
        self.reader.stop()
        if self.process.poll() is None:
            self.process.kill()
        self.reader.join()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process.wait()
        self.errors.close()


def parser_process_from() -> int:
    """The size in bytes from which a report is parsed in a parser process
    (``REMEDIUM_IMPORT_PARSER_PROCESS_MB``): the one threshold of the import and of the
    command's early start, which must agree for the import to take the early process over."""
    from remedium.settings import get_settings  # noqa: PLC0415 - not in a parser process

    return int(get_settings().import_parser_process_mb * 1024 * 1024)


# Parser processes started before the importing process was ready (start_early), by (format,
# path, filename, device name); report_batches takes its report's from here.
_EARLY: dict[tuple[str, str, str, str], _Child] = {}


def start_early(
    format_name: str,
    path: Path,
    in_process_below: int,
    *,
    filename: str = "",
    device_name: str = "",
) -> None:
    """Start the parser process of ``path`` now, if the report is large enough to have one
    (``in_process_below``, as ``report_batches`` decides): it then parses while this process
    loads the rest of the pipeline (SQLAlchemy, the models: about 0.4 s of a command), and
    ``report_batches`` of the same report takes it over. :func:`stop_early` stops one that was
    never taken (the command failed before)."""
    if path.stat().st_size < in_process_below:
        return
    key = (format_name, str(path), filename or path.name, device_name)
    if key not in _EARLY:
        _EARLY[key] = _Child(format_name, path, key[2], device_name)


def stop_early() -> None:
    """Stop the parser processes :func:`start_early` started that no import took over."""
    while _EARLY:
        _, child = _EARLY.popitem()
        child.hashing.cancel()
        child.stop()


@contextmanager
def _child(format_name: str, path: Path, filename: str, device_name: str) -> Iterator[Report]:
    child = _EARLY.pop((format_name, str(path), filename, device_name), None)
    if child is None:
        child = _Child(format_name, path, filename, device_name)
    try:
        first = child.reader.get()
        if first[0] != "info":
            raise RuntimeError(f"the parser process of {filename} sent {first[0]!r} first")
        yield Report(first[1], _batches(child.reader, filename), path, child.hashing)
    except BaseException:
        child.hashing.cancel()
        raise
    finally:
        child.stop()


# Batches read ahead from the parser process. The pipe itself holds a fraction of one batch:
# without reading ahead, the parser would stop whenever this process is busy for a while (a
# large batch, settling devices: see changes/service.py) instead of parsing on.
_READ_AHEAD = 16


class _Reader:
    """Reads the parser process's messages in a thread, up to :data:`_READ_AHEAD` ahead (the
    database driver lets go of the interpreter while a statement runs, so the thread reads
    while this process writes).

    A failure while reading (the child's ``ReportError``, a crash, the child dying) is handed to
    the importing thread and raised there, by :meth:`get`.
    """

    def __init__(self, stdout: IO[bytes], errors: IO[bytes], filename: str) -> None:
        self._stdout, self._errors, self._filename = stdout, errors, filename
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=_READ_AHEAD)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report-batches", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                message = _receive(self._stdout, self._errors, self._filename)
            except BaseException as exc:  # raised again in the importing thread
                self._put(("raise", exc))
                return
            self._put(message)
            if message[0] == "done":
                return

    def _put(self, message: tuple[Any, ...]) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self) -> tuple[Any, ...]:
        """The next message; raises what reading it raised."""
        message = self._queue.get()
        if message[0] == "raise":
            raise message[1]
        return message

    def stop(self) -> None:
        """No more messages are wanted (the thread ends at the child's end of output)."""
        self._stopped.set()

    def join(self) -> None:
        """Wait for the thread (after :meth:`stop` and the child's end)."""
        self._thread.join()


def _batches(reader: _Reader, filename: str) -> Iterator[Batch]:
    while True:
        message = reader.get()
        if message[0] == "done":
            return
        if message[0] != "batch":
            raise RuntimeError(f"the parser process of {filename} sent {message[0]!r}")
        yield message[1]


def _receive(stdout: IO[bytes], errors: IO[bytes], filename: str) -> tuple[Any, ...]:
    try:
        # Written by our own child process, never by the report's author.
        message: tuple[Any, ...] = pickle.load(stdout)  # noqa: S301
    except EOFError:
        errors.seek(0)
        tail = errors.read()[-2000:].decode("utf-8", "replace").strip()
        raise RuntimeError(
            f"the parser process of {filename} stopped unexpectedly" + (f": {tail}" if tail else "")
        ) from None
    if message[0] == "error":
        raise ReportError(message[1], where=message[2], filename=message[3])
    if message[0] == "crash":
        raise RuntimeError(f"the parser failed on {filename}:\n{message[1]}")
    return message


# The parser process collects cyclic garbage once per this many batches, not as it allocates.
_COLLECT_EVERY = 100


def main(argv: list[str]) -> int:
    """The parser process: parse ``argv = [format, path, filename, device name, limits]``
    (``limits.Limits.as_argument``: the importing process's settings, so that this one need not
    load them), pickle the batches out.

    Its records, batches and indexes are acyclic and it lives for one report, so the cyclic
    garbage collector does not run as it allocates (it walked the digest's growing indexes
    over and over: a third of the process's CPU on a report of 600,000 findings of one image,
    docs/imports.md); it collects once every :data:`_COLLECT_EVERY` batches instead.
    """
    gc.disable()
    format_name, path, filename, device_name, handed = argv
    limits.hand_over(limits.Limits.from_argument(handed))
    out = sys.stdout.buffer

    def send(*message: Any) -> None:
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        with open_report(Path(path)) as stream:
            info, records = get_parser(format_name).parse(stream, filename)
            send("info", info)
            for count, batch in enumerate(_digest(records, stream, device_name), 1):
                send("batch", batch)
                if not count % _COLLECT_EVERY:
                    gc.collect()
    except ReportError as exc:
        send("error", exc.detail, exc.where, exc.filename)
        return 0
    except BrokenPipeError:
        return 1  # the importing process went away
    except Exception:
        send("crash", traceback.format_exc(limit=20))
        return 1
    send("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
