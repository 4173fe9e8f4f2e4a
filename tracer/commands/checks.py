"""What every command checks before it reads a source or opens the store, so that a bad path, an empty
file or a file that is not a store becomes one line naming it (``error: <path> …``), not a traceback
from deep inside a reader.

Nothing heavy is imported at module level: the store (DuckDB, pyarrow) loads when a command opens it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tracer.errors import IngestError, MoneytrailError, one_line

if TYPE_CHECKING:
    from tracer.store import Store
    from tracer.workspace import Workspace

#: First bytes of every DuckDB database file: an 8-byte checksum, then the magic "DUCK".
_DUCKDB_MAGIC_OFFSET, _DUCKDB_MAGIC = 8, b"DUCK"
#: How much of a text source is looked at for binary data before it is read.
_SNIFF_BYTES = 64 << 10


def open_store_at(db: str | Path, read_only: bool = False) -> Store:
    """Open the store at ``db`` (``--db``), refusing with one line what is not a store.

    Read-only opens refuse a path that does not exist instead of creating a store there.
    """
    from tracer.store import StoreError, open_store

    db = store_path(db, must_exist=read_only)
    try:
        return open_store(db, read_only=read_only)
    except (MoneytrailError, StoreError):
        raise
    except Exception as exc:
        raise MoneytrailError(f"--db {db}: cannot open the store: {one_line(exc)}") from exc


def open_workspace_at(db: str | Path, read_only: bool = False) -> Workspace:
    """:func:`open_store_at`, as the workspace the commands work through."""
    from tracer.workspace import Workspace

    store = open_store_at(db, read_only=read_only)
    return Workspace.of(store)


def store_path(db: str | Path, must_exist: bool) -> Path:
    """Check ``--db`` without opening it: not a folder, a DuckDB file if it exists, else creatable."""
    db = Path(db)
    if db.is_dir():
        raise MoneytrailError(f"--db {db}: is a directory, not a store file")
    if not db.exists():
        if must_exist:
            raise MoneytrailError(f"--db {db}: no store at this path; build one with `tracer ingest …` or `tracer demo`")
        if not db.parent.is_dir():
            raise MoneytrailError(f"--db {db}: folder {db.parent} does not exist")
    elif db.stat().st_size > 0 and not _looks_like_duckdb(db):
        raise MoneytrailError(f"--db {db}: not a DuckDB store file (no DuckDB header)")
    return db


def _looks_like_duckdb(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(_DUCKDB_MAGIC_OFFSET + len(_DUCKDB_MAGIC))
    except OSError as exc:
        raise MoneytrailError(f"--db {path}: {exc.strerror}") from exc
    return head[_DUCKDB_MAGIC_OFFSET:] == _DUCKDB_MAGIC


def source_file(path: Path, what: str = "file") -> Path:
    """A source that must be one non-empty, readable file."""
    if not path.exists():
        raise IngestError(str(path), "path", "no such file or directory")
    if path.is_dir():
        raise IngestError(str(path), "path", f"is a directory; expected a {what}")
    if not os.access(path, os.R_OK):
        raise IngestError(str(path), "path", "not readable (permission denied)")
    if path.stat().st_size == 0:
        raise IngestError(str(path), "byte 0", "empty file: nothing to ingest")
    return path


def text_file(path: Path, what: str = "file") -> Path:
    """A source that must be one non-empty text file (CSV, JSON, YAML, lists).

    A NUL byte near the start means binary data or UTF-16, not the UTF-8 text every reader expects;
    refusing the file says so at once, where reading it would quarantine every line as "broken
    encoding". Single lines that are not UTF-8 are still the readers' to quarantine.
    """
    source_file(path, what)
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    nul = head.find(b"\0")
    if nul >= 0:
        raise IngestError(str(path), f"byte {nul}", f"binary data (NUL byte), not a UTF-8 text {what}")
    return path


def source_paths(paths: list[Path], text: bool = False) -> list[Path]:
    """Sources that may be files or folders: each must exist; files must not be empty, folders not
    empty (the reader then says which files of a folder it takes)."""
    for path in paths:
        if not path.exists():
            raise IngestError(str(path), "path", "no such file or directory")
        if path.is_dir():
            if not any(path.iterdir()):
                raise IngestError(str(path), "directory", "empty directory: nothing to ingest")
        elif text:
            text_file(path)
        else:
            source_file(path)
    return paths


def output_folder(path: Path, option: str) -> Path:
    """A folder the command writes into: it may be missing (it is created), but not a file."""
    if path.exists() and not path.is_dir():
        raise MoneytrailError(f"{option} {path}: is a file; expected a folder")
    return path


def output_file(path: Path, option: str) -> Path:
    """A file the command writes: not a folder; its folder may be missing (it is created), not a file."""
    if path.is_dir():
        raise MoneytrailError(f"{option} {path}: is a directory; expected a file name")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise MoneytrailError(f"{option} {path}: {folder} is a file, not a folder")
            break
    return path


def nothing_read(source: Path | str, summary: dict) -> None:
    """Refuse a run that read no rows at all: a header-only CSV, a list with no entries."""
    if not summary.get("read") and not summary.get("quarantined"):
        raise IngestError(str(source), "whole file", "no rows found: nothing was ingested")


@contextlib.contextmanager
def naming(source: Path | str) -> Iterator[None]:
    """Errors of a reader that do not say which file they come from get the file's name put in front.

    moneytrail's own errors (IngestError names file and position) and the store's refusals
    (StoreError, e.g. a network mismatch names the store) pass through unchanged.
    """
    try:
        yield
    except MoneytrailError:
        raise
    except Exception as exc:
        if _is_store_error(exc) or (isinstance(exc, OSError) and exc.filename is not None):
            raise
        text = one_line(exc) or type(exc).__name__
        if str(source) in text:
            raise
        expected = isinstance(exc, (ValueError, LookupError, OSError)) or _library_error(exc)
        reason = text if expected else f"unexpected {type(exc).__name__}: {text}"
        raise IngestError(str(source), "file", reason) from exc


def _is_store_error(exc: BaseException) -> bool:
    store = sys.modules.get("tracer.store.store")
    return store is not None and isinstance(exc, store.StoreError)


def _library_error(exc: BaseException) -> bool:
    for module, name in (("duckdb", "Error"), ("pyarrow.lib", "ArrowException"), ("yaml", "YAMLError"),
                         ("csv", "Error")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False
