"""A bound on the size of one chunk of a chunked request body, in gunicorn's own reader.

gunicorn parses a chunk-size line before the application reads anything, and then
waits for as many bytes as the line says: ``ffffffffffffffffffff`` holds a worker
thread until the client hangs up. No single chunk of a body the service accepts can
be larger than ``GLUE_TF_MAX_BODY_BYTES``, so a larger chunk size is refused where it
is parsed, as gunicorn refuses a malformed one (``InvalidChunkSize``), and the
application answers it 400 (``serving.http``).
"""

from __future__ import annotations

from gunicorn.http import body
from gunicorn.http.errors import InvalidChunkSize

_PARSE = body.ChunkedReader.parse_chunk_size


def bound_chunk_size(limit: int) -> None:
    """From now on, a chunk-size line over ``limit`` bytes raises ``InvalidChunkSize`` in this process
    and the workers it forks."""
    def parse_chunk_size(self, unreader, data=None):
        size, rest = _PARSE(self, unreader, data)
        if size > limit:
            raise InvalidChunkSize(b"%x is over the body limit of %d bytes" % (size, limit))
        return size, rest

    body.ChunkedReader.parse_chunk_size = parse_chunk_size
