"""HTTP File Upload (XEP-0363) for Python: ``url = await
client.upload(path_or_bytes, filename=None, content_type=None)``.

The work is the C helper's (epode/upload.h, as ``_epode.Upload``): it
finds the server's upload service by service discovery, asks it for a
slot, PUTs the bytes over HTTPS through libcurl on the client's own
loop (no thread), and gives back the URL to share. The certificate of
the HTTP server is checked against the client's ``ca_file`` (else the
system store). ``client.send_url(to, url)`` sends it with Out-of-Band
data (XEP-0066) so other clients show the file inline.

Failures raise ``epode.UploadError`` (an ``epode.Error``): ``.code`` /
``.name`` (ELIMIT: too large, ``.max_file_size`` the service's limit;
EREFUSED: the service said no, ``.condition`` such as
'resource-constraint' for a quota and ``.retry_stamp``; EHTTP: the PUT
got ``.http_status``; ENOTFOUND: the server has no upload service;
ENOTSUP: epode was built without libcurl).
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from typing import Any, Callable, Optional, Union

from . import _epode
from ._epode import Error

__all__ = ["UploadError", "Uploader", "oob_url"]

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


def oob_url(message: Any) -> Optional[str]:
    """The URL a message carries as Out-of-Band data (XEP-0066), or None."""
    url: Optional[str] = _epode.oob_url(message)
    return url


class UploadError(Error):
    """An upload that failed: ``code``/``name`` as every epode.Error, and
    ``condition``, ``text``, ``max_file_size`` (0: unknown),
    ``http_status`` (0: no HTTP answer), ``retry_stamp``."""

    condition: Optional[str]
    text: Optional[str]
    max_file_size: int
    http_status: int
    retry_stamp: Optional[str]


def _upload_error(code: int, condition: Optional[str], text: Optional[str], max_size: int,
                  status: int, retry: Optional[str]) -> UploadError:
    name = next((k for k, v in _epode.error_codes.items() if v == code), None)
    msg = "upload failed: %s" % _epode.strerror(code)
    if condition:
        msg += " (%s)" % condition
    if text:
        msg += ": %s" % text
    if max_size:
        msg += " [max-file-size %d]" % max_size
    err = UploadError(msg)
    err.code, err.name, err.condition, err.text = code, name, condition, text
    err.max_file_size, err.http_status, err.retry_stamp = max_size, status, retry
    return err


class Uploader:
    """``client.uploader``: the upload helper of a client, made on first
    use (after the client is ready). Most programs only need
    ``await client.upload(...)``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._raw: Optional[Any] = None
        self._allow_http = False
        self._resolve: list = []
        self._service: Optional[tuple] = None

    def _helper(self) -> Any:
        conn = self._client.connection
        if self._raw is None:
            self._raw = _epode.Upload(conn)
            if self._allow_http:
                self._raw.allow_http(True)
            for r in self._resolve:
                self._raw.add_resolve(*r)
            if self._service is not None:
                self._raw.set_service(*self._service)
        return self._raw

    @property
    def service(self) -> Optional[str]:
        """The upload service's JID once known (discovered or set)."""
        return self._raw.service if self._raw is not None else (
            self._service[0] if self._service else None)

    @property
    def max_file_size(self) -> int:
        """The service's announced limit in bytes (0: unknown)."""
        return self._raw.max_file_size if self._raw is not None else (
            self._service[1] if self._service else 0)

    def set_service(self, jid: Optional[str], max_file_size: int = 0) -> None:
        """Use ``jid`` instead of discovering a service (None: discover)."""
        self._service = (jid, max_file_size) if jid else None
        if self._raw is not None:
            self._raw.set_service(jid, max_file_size)

    def allow_http(self, allow: bool = True) -> None:
        """Accept http:// slot URLs: a loosening for tests on loopback."""
        self._allow_http = bool(allow)
        if self._raw is not None:
            self._raw.allow_http(self._allow_http)

    def add_resolve(self, host: str, port: int, address: str) -> None:
        """Connect to ``address`` for URLs naming ``host:port`` (no DNS)."""
        self._resolve.append((host, port, address))
        if self._raw is not None:
            self._raw.add_resolve(host, port, address)

    async def upload(self, source: Source, filename: Optional[str] = None,
                     content_type: Optional[str] = None, *,
                     progress: Optional[Callable[[int, int], Any]] = None) -> str:
        """Uploads ``source`` (a path, or bytes-like data, named
        ``filename`` or 'file.bin') and returns the GET URL.
        ``progress(sent, total)`` is called while the bytes go out.
        Without ``content_type`` it is guessed from the file name
        (``mimetypes``; application/octet-stream if unknown).
        Raises UploadError (also at once for a file over the limit the
        service announced), OSError at once for a path that cannot be
        opened (FileNotFoundError, IsADirectoryError, PermissionError), or
        epode.Error at once for a bad argument or a client not ready
        (ESTATE)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def done(code: int, url: Optional[str], condition: Optional[str], text: Optional[str],
                 max_size: int, status: int, retry: Optional[str]) -> None:
            if fut.done() or loop.is_closed():
                return
            if code == 0 and url:
                fut.set_result(url)
            else:
                fut.set_exception(_upload_error(code, condition, text, max_size, status, retry))

        if content_type is None:
            name = filename or (os.fsdecode(os.fspath(source))
                                if isinstance(source, (str, os.PathLike)) else None)
            if name:
                content_type = mimetypes.guess_type(os.path.basename(name))[0]
        kw: dict = {"filename": filename, "content_type": content_type}
        if isinstance(source, (bytes, bytearray, memoryview)):
            kw["data"] = source
            if filename is None:
                kw["filename"] = "file.bin"
        elif isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            # Python's own errors for a file that is not there or not a
            # file (the C layer can only say "could not be read")
            with open(path, "rb"):  # a directory: IsADirectoryError
                pass
            kw["path"] = path
        else:
            raise TypeError("upload() takes a path or bytes, not %s" % type(source).__name__)
        raw = self._helper()
        try:
            uid = raw.start(done, progress, **kw)
        except Error as exc:
            if exc.code != _epode.ELIMIT:
                raise
            # over the limit the service announced: refused before any slot
            raise _upload_error(exc.code, None, "larger than the service accepts",
                                raw.max_file_size, 0, None) from None
        try:
            return await fut
        except asyncio.CancelledError:
            if not fut.done():
                try:
                    raw.cancel(uid)
                except Error:
                    pass
            raise
