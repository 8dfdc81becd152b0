"""Open a possibly compressed file (gzip, zstd) as one buffered binary stream."""

from __future__ import annotations

import gzip
import io
from typing import Any, BinaryIO


def open_binary(path: str, raw: BinaryIO | None = None) -> BinaryIO:
    """Open a possibly compressed file as a buffered binary stream.

    Pass `raw` (an open file) to watch its position: it is the compressed
    offset, which is what a progress bar over file sizes needs.
    """
    lower = path.lower()
    raw = raw if raw is not None else open(path, "rb")  # noqa: SIM115 - closed via the stream
    if lower.endswith(".gz"):
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        return io.BufferedReader(_Read1Reader(gz, raw), buffer_size=1 << 20)
    if lower.endswith(".zst"):
        return io.BufferedReader(_StrictZstdReader(raw), buffer_size=1 << 20)
    return raw


class _Read1Reader(io.RawIOBase):
    """Reads with `read1`, so the lines before a truncated end are delivered, not lost.

    `GzipFile.read(n)` collects n bytes before returning; a file cut short raised
    EOFError with up to a buffer of complete lines still unreturned.
    """

    def __init__(self, stream: Any, raw: BinaryIO) -> None:
        self._stream = stream
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._raw.close()
        super().close()


class _StrictZstdReader(io.RawIOBase):
    """zstd frames one after another; a stream cut inside a frame raises, never ends early.

    zstandard's `stream_reader` reports end of file on a truncated frame, so a
    cut-off download or copy silently lost its last records; gzip raises EOFError
    in that case, and so does this reader.
    """

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard

        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._out = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._out):
            chunk = self._raw.read(1 << 16)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ended inside a frame: the file is truncated")
                return 0
            out = []
            while chunk:
                out.append(self._obj.decompress(chunk))
                self._in_frame = not self._obj.eof
                chunk = b""
                if self._obj.eof:  # the next frame starts in what this one left over
                    chunk = self._obj.unused_data
                    self._obj = self._dctx.decompressobj()
            self._out, self._pos = b"".join(out), 0
        n = min(len(buffer), len(self._out) - self._pos)
        buffer[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()
