"""Removing a Unix stream server's socket file when the server closes.

From Python 3.13 on, asyncio's ``create_unix_server(..., cleanup_socket=True)``
(the default) removes the socket's file when the server stops serving that
socket, unless the file was replaced meanwhile (another inode) or is gone
already; abstract sockets have no file. tether.aio does the same on 3.13+
(earlier versions leave the file, as their asyncio does). The listening
sockets to clean up are remembered weakly, with the inode their file had.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import weakref

logger = logging.getLogger("asyncio")

#: Whether this Python's asyncio removes the file (3.13+).
CLEANS_UP = sys.version_info >= (3, 13)

_inodes: weakref.WeakKeyDictionary[socket.socket, int] = weakref.WeakKeyDictionary()


def remember(sock: socket.socket) -> None:
    """Note the file of the bound Unix socket `sock`, to remove it when
    the server stops serving `sock`."""
    path = sock.getsockname()
    if not path or path[0] in (0, "\x00"):
        return  # abstract or unbound: no file
    try:
        _inodes[sock] = os.stat(path).st_ino
    except FileNotFoundError:
        pass


def clean_up(sock: socket.socket) -> None:
    """Remove the file of `sock` (before it is closed) if it was remembered
    and is still the same file. Errors other than "already gone" are
    logged, as asyncio does."""
    inode = _inodes.pop(sock, None)
    if inode is None:
        return
    path = sock.getsockname()
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)
