"""Reading a report as batches: in this process, or, for a large file, in a parser process.

Parsing is Python work that holds the interpreter; writing is mostly the database's. For a file
of at least ``Settings.import_parser_process_mb`` the parser and the :class:`~.batches.Digest`
run in a child process (``python -m remedium.importers.worker``) that pickles each batch to its
standard output, so the two halves use two cores: while the importing process writes one batch,
the child parses the next. The pipe holds about one batch, so memory stays flat. The child's
``ReportError`` is raised again here with the same file, place and message; any other failure
of the child, or the child dying, ends the import with an error, and leaving the ``with`` block
early (the writer failed) stops the child.

Protocol on the child's standard output: pickled tuples ``("info", ReportInfo)``, then
``("batch", Batch)`` any number of times, then ``("done", sha256)``, or ``("error", message,
where, filename)`` / ``("crash", traceback)``. The child also hashes the file, off this process.
"""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from remedium.importers.batches import BATCH, Batch, Digest
from remedium.importers.records import ReportError, ReportInfo, ReportParser, open_report

_PIPE_BUFFER = 1 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(slots=True)
class Report:
    """A report being read: its info, its batches, and its SHA-256 once they are all read."""

    info: ReportInfo
    batches: Iterator[Batch]
    path: Path
    sha256: str = ""

    def file_sha256(self) -> str:
        """The file's SHA-256 (from the parser process when there was one)."""
        return self.sha256 or file_sha256(self.path)


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


@contextmanager
def _child(format_name: str, path: Path, filename: str, device_name: str) -> Iterator[Report]:
    command = [sys.executable, "-m", "remedium.importers.worker", format_name, str(path), filename]
    command.append(device_name)
    with tempfile.TemporaryFile() as errors:
        # Our own interpreter and module; the path and names are arguments, never a shell.
        process = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            bufsize=_PIPE_BUFFER,
        )
        assert process.stdout is not None
        try:
            first = _receive(process.stdout, errors, filename)
            if first[0] != "info":
                raise RuntimeError(f"the parser process of {filename} sent {first[0]!r} first")
            report = Report(first[1], iter(()), path)
            report.batches = _batches(process.stdout, errors, filename, report)
            yield report
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()


def _batches(
    stdout: IO[bytes], errors: IO[bytes], filename: str, report: Report
) -> Iterator[Batch]:
    while True:
        message = _receive(stdout, errors, filename)
        if message[0] == "done":
            report.sha256 = message[1]
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


def main(argv: list[str]) -> int:
    """The parser process: parse ``argv = [format, path, filename, device name]``, pickle the
    batches out."""
    from remedium.importers.registry import get_parser

    format_name, path, filename, device_name = argv
    out = sys.stdout.buffer

    def send(*message: Any) -> None:
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        with open_report(Path(path)) as stream:
            info, records = get_parser(format_name).parse(stream, filename)
            send("info", info)
            for batch in _digest(records, stream, device_name):
                send("batch", batch)
    except ReportError as exc:
        send("error", exc.detail, exc.where, exc.filename)
        return 0
    except BrokenPipeError:
        return 1  # the importing process went away
    except Exception:
        send("crash", traceback.format_exc(limit=20))
        return 1
    send("done", file_sha256(Path(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
