"""Reading input files that may be compressed.

Market-data archives ship CSV and JSON gzip- or zstd-compressed (``.csv.gz``,
``.json.zst``). Every reader goes through :func:`read_bytes`, which recognises the
compression from the file's first bytes (not its name) and returns the decompressed
content, so a compressed file reads exactly like the plain one.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

from volcal.errors import DataError

__all__ = ["compression_of", "decompress", "read_bytes", "read_text"]

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: refuse to inflate an archive beyond this (a corrupt or hostile header cannot
#: make a reader allocate without bound)
MAX_DECOMPRESSED_BYTES = 2 << 30


def compression_of(raw: bytes) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` from the leading magic bytes."""
    if raw[:2] == _GZIP_MAGIC:
        return "gzip"
    if raw[:4] == _ZSTD_MAGIC:
        return "zstd"
    return None


def decompress(raw: bytes, where: str) -> bytes:
    """The content of ``raw``, decompressed when it is a gzip or zstd stream.

    Raises :class:`~volcal.errors.DataError` ``"<where>: corrupt gzip archive (...)"``
    for a damaged or truncated archive, and names the missing package for zstd.
    """
    kind = compression_of(raw)
    if kind is None:
        return raw
    if kind == "gzip":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
                out = fh.read(MAX_DECOMPRESSED_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{where}: corrupt gzip archive ({exc})") from exc
    else:
        try:
            import zstandard
        except ImportError:
            raise DataError(
                f"{where}: zstd-compressed file needs the 'zstandard' package "
                "(pip install 'volcal[store]')"
            ) from None
        try:
            dobj = zstandard.ZstdDecompressor().decompressobj()
            out = dobj.decompress(raw)
        except zstandard.ZstdError as exc:
            raise DataError(f"{where}: corrupt zstd archive ({exc})") from exc
        if not dobj.eof:
            raise DataError(f"{where}: corrupt zstd archive (truncated: no end of frame)")
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise DataError(f"{where}: decompressed content exceeds {MAX_DECOMPRESSED_BYTES} bytes")
    return out


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a file, decompressed when it is gzip or zstd compressed."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a directory, not a file")
    return decompress(p.read_bytes(), p.name)


def read_text(path: str | Path, errors: str = "strict") -> str:
    """The text (UTF-8, a byte-order mark dropped) of a possibly compressed file."""
    p = Path(path)
    raw = read_bytes(p)
    try:
        return raw.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as exc:
        raise DataError(f"{p.name}: not a UTF-8 text file") from exc
