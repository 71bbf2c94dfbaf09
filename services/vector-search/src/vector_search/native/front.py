"""ctypes binding of ``libvsfront.so.0``: the C++ gRPC front that owns the public port.

It answers plain vector searches from the live FAISS indexes and forwards every other call to
this process's grpcio server behind it, on a Unix socket (services/vector-search/native/
front.cc says why and what). Built by ``make install`` where gRPC C++ is installed; without
it the service serves from Python alone.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Any

from fashionrec_common.grpc_auth import ServerTls

log = logging.getLogger(__name__)

DEFAULT_LIB = Path(__file__).with_name("libvsfront.so.0")
_P = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "vsf_new": (_P, []),
    "vsf_serve": (
        ctypes.c_int,
        [_P, *[ctypes.c_char_p] * 2, ctypes.c_int, *[ctypes.c_char_p] * 4, ctypes.c_int]
        + [ctypes.c_char_p, ctypes.c_int],
    ),
    "vsf_stop": (None, [_P, ctypes.c_double]),
    "vsf_free": (None, [_P]),
    "vsf_stats": (None, [_P, ctypes.POINTER(ctypes.c_uint64)]),
    "vsf_index_add": (_P, [_P, ctypes.c_char_p]),
    "vsf_index_remove": (None, [_P, _P]),
    "vsf_lock_read": (None, [_P]),
    "vsf_lock_read_long": (None, [_P]),
    "vsf_unlock_read": (None, [_P, ctypes.c_int]),
    "vsf_lock_write": (None, [_P]),
    "vsf_unlock_write": (None, [_P]),
    "vsf_index_set": (
        None,
        [_P, _P, _P, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint64, ctypes.c_int64],
    ),
    "vsf_index_key": (None, [_P, ctypes.c_int64, ctypes.c_char_p]),
    "vsf_index_put": (None, [_P, ctypes.c_int64, _P, ctypes.c_char_p, _P]),
    "vsf_index_clear": (None, [_P, ctypes.c_int64, _P]),
    "vsf_index_bytes": (ctypes.c_uint64, [_P]),
}


def load_library(path: Path) -> ctypes.CDLL:
    """Load ``path`` after FAISS (it links the faiss-cpu wheel's libfaiss.so) and type it."""
    import faiss  # noqa: F401  the library's FAISS must be the one already in this process

    # DEEPBIND: its gRPC, protobuf and absl resolve to their own libraries even when a library
    # loaded earlier with global symbols (TensorFlow, in one test process) exports others
    lib = ctypes.CDLL(str(path), mode=os.RTLD_LOCAL | os.RTLD_DEEPBIND)
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


class NativeFront:
    """One front per server: indexes register with it from the start, it serves once asked."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.handle = lib.vsf_new()
        self.port = 0

    def serve(
        self,
        address: str,
        backend: str,
        threads: int,
        tokens: list[str],
        tls: ServerTls | None,
        max_k: int,
    ) -> int:
        """Listen on ``address``; forward what it does not answer to ``backend``."""
        cert = key = ca = b""
        if tls is not None:
            cert, key = tls.cert_file.read_bytes(), tls.key_file.read_bytes()
            ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else b""
        err = ctypes.create_string_buffer(512)
        port = self.lib.vsf_serve(
            self.handle, address.encode(), backend.encode(), threads,
            "\n".join(tokens).encode(), cert, key, ca, max_k, err, len(err),
        )  # fmt: skip
        if not port:
            raise OSError(f"native front: {err.value.decode()}")
        self.port = port
        return port

    def stats(self) -> dict[str, int]:
        """Search calls answered natively, and calls forwarded to Python."""
        out = (ctypes.c_uint64 * 2)()
        self.lib.vsf_stats(self.handle, out)
        return {"native": int(out[0]), "forwarded": int(out[1])}

    def stop(self, grace_s: float) -> None:
        self.lib.vsf_stop(self.handle, grace_s)

    def close(self) -> None:
        if self.handle:
            self.lib.vsf_free(self.handle)
            self.handle = None


def open_front(mode: str, lib_path: Path | None) -> NativeFront | None:
    """``auto``: the front when the library is there and loads; ``on``: it or an error."""
    if mode == "off":
        return None
    path = lib_path or DEFAULT_LIB
    try:
        return NativeFront(load_library(path))
    except OSError as exc:
        if mode == "on":
            raise OSError(f"native front required (VECTOR_SEARCH_NATIVE=on): {exc}") from exc
        log.info(
            "native front not available; serving Search from Python",
            extra={"reason": str(exc), "build": "services/vector-search/native/build.sh"},
        )
        return None
