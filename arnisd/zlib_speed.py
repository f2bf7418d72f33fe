"""zlib streams made and read through zlib-ng when the ``speed`` extra installs it, else
through zlib: the same format either way (any zlib reader inflates what zlib-ng deflates), in
about a third of the time at the low levels maps use. Region files' chunks are not made here:
their bytes must not depend on what is installed."""

from __future__ import annotations

import zlib

try:
    from zlib_ng import zlib_ng as _zlib
    ERRORS: tuple[type[Exception], ...] = (zlib.error, _zlib.error)
except ImportError:          # the speed extra is not installed
    _zlib = zlib
    ERRORS = (zlib.error,)

compress = _zlib.compress
compressobj = _zlib.compressobj
decompress = _zlib.decompress
decompressobj = _zlib.decompressobj
