"""Images inside zip archives, for the Batch tab and the CLI: read within limits, and every file
that is not scored named with the reason (not an image, too large, damaged in the archive)."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImageError
from .imaging import IMAGE_SUFFIXES

MAX_ZIP_BYTES = 200 * 10**6  # what the zips of one batch may expand to together: guards against zip bombs
# Entries a zip may list (images, other files, folders). Its directory is read whole when it is
# opened: a 200 MB upload could list ~2 million empty entries (GBs of memory, a minute of work).
MAX_ZIP_ENTRIES = 10_000
# ...and its directory's size, since zipfile reads the whole directory whatever count the end record
# declares: 10,000 entries with names of ~350 characters.
MAX_ZIP_DIRECTORY_BYTES = 4 * 10**6


@dataclass
class ZipImages:
    names: list[str] = field(default_factory=list)  # "archive.zip/member.jpg"
    data: list[bytes] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (name, what is wrong), in order


def read_zip(path: str | Path, max_bytes: int, budget: list[int] | None = None, room: int | None = None) -> ZipImages:
    """The images of the zip at `path`, each within `max_bytes`. `budget` (a one-item list, shared
    by the zips of one batch) holds the bytes they may still expand to, MAX_ZIP_BYTES by default;
    `room` is how many more images the batch takes (ImageError, before anything is read, if more).
    A damaged archive is one problem; a damaged member is one, and the others are still read."""
    path = Path(path)
    out = ZipImages()
    budget = [MAX_ZIP_BYTES] if budget is None else budget
    try:
        entries, directory_bytes = _directory_declared(path)
        if entries > MAX_ZIP_ENTRIES:
            out.problems.append((path.name, f"the zip archive lists {entries:,} entries; at most "
                                            f"{MAX_ZIP_ENTRIES:,} are read: split it up"))
            return out
        if directory_bytes > MAX_ZIP_DIRECTORY_BYTES:
            out.problems.append((path.name, f"the zip archive's list of entries is {directory_bytes / 1e6:.1f} MB; "
                                            f"at most {MAX_ZIP_DIRECTORY_BYTES / 1e6:.0f} MB is read: split it up"))
            return out
        with zipfile.ZipFile(path) as zf:
            _read_members(zf, path.name, max_bytes, budget, room, out)
    except zipfile.BadZipFile:
        out.problems.append((path.name, "not a valid zip archive"))
    except (RuntimeError, NotImplementedError, zlib.error, EOFError, OSError) as exc:  # its directory
        out.problems.append((path.name, f"the zip archive could not be read ({str(exc) or type(exc).__name__})"))
    return out


def _directory_declared(path: Path) -> tuple[int, int]:
    """The entry count and directory size the zip's end record declares, read before the directory
    is ((0, 0) if there is no end record: zipfile then says the archive is not valid)."""
    try:
        with open(path, "rb") as f:
            end = zipfile._EndRecData(f)  # private, but unchanged since Python 2.6; handles zip64
    except OSError:  # shorter than an end record
        return 0, 0
    return (0, 0) if end is None else (int(end[zipfile._ECD_ENTRIES_TOTAL]), int(end[zipfile._ECD_SIZE]))


def _os_clutter(name: str) -> bool:
    """Files an operating system adds to archives on its own (macOS resource forks, Finder and
    Explorer metadata): skipped without a word."""
    base = name.rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith("._") or base in (".DS_Store", "Thumbs.db", "desktop.ini")


def _read_members(zf: zipfile.ZipFile, zip_name: str, max_bytes: int, budget: list[int], room: int | None,
                  out: ZipImages) -> None:
    images, others, too_big = [], [], []
    for m in zf.infolist():
        if m.is_dir() or _os_clutter(m.filename):
            continue
        if Path(m.filename).suffix.lower() not in IMAGE_SUFFIXES:
            others.append(m.filename)
        else:
            (too_big if m.file_size > max_bytes else images).append(m)
    if not images and not too_big:
        contents = f"it holds {_listing(others)}" if others else "it is empty"
        out.problems.append((zip_name, f"no images in the zip archive ({contents})"))
        return
    if others:
        out.problems.append((zip_name, f"{_listing(others)} skipped: not images "
                                       f"({', '.join(sorted(IMAGE_SUFFIXES))}; zips inside zips are not opened)"))
    if len(too_big) == 1:  # said without reading them
        out.problems.append((f"{zip_name}/{too_big[0].filename}", f"file is {too_big[0].file_size / 1e6:.1f} MB; "
                                                                 f"the limit is {max_bytes / 1e6:.0f} MB"))
    elif too_big:
        out.problems.append((zip_name, f"{_listing([m.filename for m in too_big])} skipped: over the "
                                       f"{max_bytes / 1e6:.0f} MB limit for an image"))
    if room is not None and len(images) > room:
        raise ImageError(f"{zip_name} holds {len(images)} images; the batch has room for {max(room, 0)} more")
    expands_to = sum(m.file_size for m in images)
    if expands_to > budget[0]:
        out.problems.append((zip_name, f"zip archives may expand to {MAX_ZIP_BYTES / 1e6:.0f} MB of images "
                                       f"together, and this one has {expands_to / 1e6:.0f} MB: split it up"))
        return
    budget[0] -= expands_to
    for m in images:
        name = f"{zip_name}/{m.filename}"
        try:
            # zipfile reads no more than the size the archive declares, and checks the CRC.
            with zf.open(m) as member:
                data = member.read()
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged; the others are still read
            out.problems.append((name, f"could not be read from the zip archive ({str(exc) or 'it is truncated'})"))
            continue
        except (RuntimeError, NotImplementedError) as exc:  # encrypted, an unsupported compression method
            out.problems.append((name, f"could not be read from the zip archive: {exc}"))
            continue
        out.names.append(name)
        out.data.append(data)


def _listing(names: list[str], shown: int = 3) -> str:
    """'1 file (a.txt)' / '5 files (a, b, c, ...)'"""
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"{len(names)} file{'s' if len(names) != 1 else ''} ({listed})"
