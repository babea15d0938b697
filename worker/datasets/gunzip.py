"""Bounded gzip decompression, shared by the Fashion-MNIST loader and the dataset readers."""

from __future__ import annotations

import zlib
from pathlib import Path


def gunzip_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a gzip file's content, decompressed in one call.

    zlib lets go of the GIL for the whole call. ``GzipFile`` decompresses in small pieces and
    takes the GIL back for each: beside TensorFlow's import in another thread (an embedded
    ``trainq train`` loads the data meanwhile), the train images took 2.5 s instead of 0.3 s,
    and slowed that import down too.

    Raises:
        OSError: when the file cannot be read.
        zlib.error: when it is not gzip or its data are damaged.
        EOFError: when it ends before the gzip end-of-stream marker (a truncated file).
    """
    return gunzip_bytes(path.read_bytes(), limit)


def gunzip_bytes(compressed: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of the content of gzip data (all members of a multi-member file).

    The limit bounds the memory a small, hostile file can make us allocate.

    Raises:
        zlib.error: when it is not gzip or its data are damaged.
        EOFError: when it ends before the gzip end-of-stream marker (a truncated file).
    """
    decompressor = zlib.decompressobj(wbits=31)  # gzip framing
    content = decompressor.decompress(compressed, limit)
    while len(content) < limit and decompressor.eof and decompressor.unused_data:
        rest = decompressor.unused_data  # the next member of a multi-member file
        decompressor = zlib.decompressobj(wbits=31)
        content += decompressor.decompress(rest, limit - len(content))
    if len(content) < limit and not decompressor.eof:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")
    return content
