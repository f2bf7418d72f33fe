"""Who may talk to the coordinator: the shared token, CURVE key files, and CURVE socket setup.

Key files are ZeroMQ's certificate format (``zmq.auth.load_certificate`` reads them): a key
pair NAME is ``NAME.key`` (the public key, mode 0644, safe to copy to other machines) and
``NAME.key_secret`` (public and secret key, mode 0600, never leaves its machine). A public
key may also be given inline as its 40-character Z85 text.

The coordinator's ROUTER becomes a CURVE server (``secure_server``): it gets its own ZAP
domain, and a ZAP handler thread on its ZeroMQ context (shared by every coordinator socket of
that context, counted) admits only the public keys listed for that domain. The handler runs
before the socket binds: libzmq lets every CURVE client in when no ZAP handler answers. A worker's DEALER becomes a CURVE client (``secure_client``)
with its own key pair and the coordinator's public key. With CURVE, every frame is encrypted
and a client with an unknown key never completes the handshake (its peer sees
``HANDSHAKE_FAILED_AUTH``), so none of its frames reach the coordinator.

``token_matches`` compares a presented shared token with the configured one in constant time;
``routing_id`` gives a worker a routing id that only token holders can compute, so that nobody
can take over a registered worker's connection by claiming its (public) worker id.
"""

from __future__ import annotations

import datetime
import hmac
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

from arnisd.errors import UserError

log = logging.getLogger("arnisd.cluster.security")

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
_Z85_KEY = re.compile(rb"^[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LOG_REPEAT_S = 60.0


class KeyFileError(UserError):
    """A key file or key that cannot be used; the message names it and what is wrong."""


# --- keys and key files ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CurveServerKeys:
    """The coordinator's key pair and the client public keys it admits (all Z85 bytes)."""

    public_key: bytes
    secret_key: bytes
    allowed_keys: frozenset


@dataclass(frozen=True, slots=True)
class CurveClientKeys:
    """A worker's key pair and the coordinator's public key (all Z85 bytes)."""

    public_key: bytes
    secret_key: bytes
    server_key: bytes


def is_z85_key(value) -> bool:
    """True for the 40-character Z85 text of a 32-byte CURVE key."""
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    return isinstance(value, bytes) and bool(_Z85_KEY.match(value))


def _key_file_text(public_key: bytes, secret_key: bytes | None) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    kind = "secret" if secret_key else "public"
    lines = [f"#   ****  Generated on {now} by arnisd keygen  ****",
             f"#   ZeroMQ CURVE **{kind}** certificate",
             ("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions."
              if secret_key else
              "#   Copy this file to the machines that should accept this key."),
             "", "metadata", "curve",
             f'    public-key = "{public_key.decode("ascii")}"']
    if secret_key:
        lines.append(f'    secret-key = "{secret_key.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def _write_new_file(path: Path, text: str, mode: int, force: bool) -> None:
    """Write ``text`` to ``path`` created with ``mode`` from the start (temp file + rename)."""
    if path.exists() and not force:
        raise KeyFileError(f"{path} already exists (use --force to replace it)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)             # the umask may have taken bits away (0644) or not
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def generate_keypair(folder: Path, name: str = "arnisd", force: bool = False) -> tuple[Path, Path]:
    """Write a new key pair ``folder/NAME.key`` (0644) and ``NAME.key_secret`` (0600).

    Refuses to replace existing files unless ``force``. Returns (public path, secret path).
    """
    if not _NAME.match(name):
        raise KeyFileError(f"key name {name!r} must be letters, digits, '.', '_' or '-' "
                        f"(at most 64, not starting with a dot)")
    folder = Path(folder)
    public_path = folder / f"{name}{PUBLIC_SUFFIX}"
    secret_path = folder / f"{name}{SECRET_SUFFIX}"
    if not force:
        for path in (secret_path, public_path):
            if path.exists():
                raise KeyFileError(f"{path} already exists (use --force to replace it)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        public_key, secret_key = zmq.curve_keypair()
        _write_new_file(secret_path, _key_file_text(public_key, secret_key), 0o600, force)
        _write_new_file(public_path, _key_file_text(public_key, None), 0o644, force)
    except OSError as exc:
        raise KeyFileError(f"cannot write keys to {folder}: {exc.strerror or exc}") from None
    return public_path, secret_path


def _read_key_file(path: Path) -> tuple[bytes | None, bytes | None]:
    """(public key, secret key) from a certificate file; either may be None."""
    public_key = secret_key = None
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except IsADirectoryError:
        raise KeyFileError(f"key file {path} is a folder") from None
    except OSError as exc:
        raise KeyFileError(f"key file {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > 64 * 1024:
        raise KeyFileError(f"key file {path} is too large to be a key file")
    for line in data.splitlines():
        line = line.strip()
        if line.startswith(b"public-key") and b"=" in line:
            public_key = line.split(b"=", 1)[1].strip(b" \t'\"")
        elif line.startswith(b"secret-key") and b"=" in line:
            secret_key = line.split(b"=", 1)[1].strip(b" \t'\"")
    for what, key in (("public", public_key), ("secret", secret_key)):
        if key is not None and not is_z85_key(key):
            raise KeyFileError(f"key file {path}: the {what} key is not a 40-character Z85 key")
    return public_key, secret_key


def load_secret_key_file(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) from a ``.key_secret`` file that only its owner can read."""
    path = Path(path)
    public_key, secret_key = _read_key_file(path)
    if secret_key is None:
        raise KeyFileError(f"key file {path} holds no secret key (give the .key_secret file)")
    if os.name == "posix":
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyFileError(f"secret key file {path} is readable by others (mode {mode:04o}); "
                            f"chmod 600 it")
    derived = zmq.curve_public(secret_key)
    if public_key is not None and public_key != derived:
        raise KeyFileError(f"key file {path}: its public key does not belong to its secret key")
    return derived, secret_key


def load_public_key(value: str, base: Path | None = None) -> bytes:
    """A public key given inline (40 Z85 characters) or as a key file (relative to ``base``)."""
    if is_z85_key(value):
        return value.encode("ascii")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    public_key, _ = _read_key_file(path)
    if public_key is None:
        raise KeyFileError(f"key file {path} holds no public key")
    return public_key


def load_allowed_keys(value, base: Path | None = None) -> frozenset:
    """Client public keys from a list (inline keys or key files) or a folder of ``*.key`` files."""
    if isinstance(value, str) and not is_z85_key(value):
        folder = Path(value).expanduser()
        if base is not None and not folder.is_absolute():
            folder = base / folder
        if not folder.is_dir():
            raise KeyFileError(f"{folder} is not a folder of public key files")
        files = sorted(folder.glob(f"*{PUBLIC_SUFFIX}"))
        if not files:
            raise KeyFileError(f"folder {folder} holds no public key files (*{PUBLIC_SUFFIX})")
        keys = [load_public_key(str(p)) for p in files]
    elif isinstance(value, str):
        keys = [value.encode("ascii")]
    else:
        keys = [load_public_key(v, base) for v in value]
    if not keys:
        raise KeyFileError("no public keys given")
    return frozenset(keys)


# --- sockets -----------------------------------------------------------------------------------

class _CredentialsProvider:
    """The ZAP callback of one coordinator socket: admit listed keys, log the rest (sparsely)."""

    def __init__(self, allowed: frozenset) -> None:
        self.allowed = allowed
        self.refused = 0
        self._logged: dict[bytes, float] = {}

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.allowed:
            return True
        self.refused += 1
        now = time.monotonic()
        if now - self._logged.get(key, -_LOG_REPEAT_S) >= _LOG_REPEAT_S:
            if len(self._logged) > 1000:
                self._logged.clear()
            self._logged[key] = now
            log.warning("refused a CURVE client with an unknown public key %s",
                        key.decode("ascii", "replace"))
        return False


ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_VERSION = b"1.0"


class _ZapHandler(threading.Thread):
    """A ZAP handler (RFC 27) for one context: CURVE clients are admitted per ZAP domain by that
    domain's credentials provider; NULL is left alone (no arnisd socket asks about it).

    Written here rather than taken from ``zmq.auth.ThreadAuthenticator``, whose thread runs an
    asyncio poller and whose ``stop()`` joins it without a timeout: this one polls with a short
    timeout, so stopping it never waits on a wake-up that might not come.
    """

    def __init__(self, context: zmq.Context) -> None:
        super().__init__(name="arnisd-zap", daemon=True)
        self.context = context
        self.providers: dict[str, _CredentialsProvider] = {}
        self._halt = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start_serving(self) -> None:
        """Start the thread; raises if the ZAP endpoint cannot be bound."""
        self.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise RuntimeError("the ZAP handler did not start")

    def run(self) -> None:
        try:
            sock = self.context.socket(zmq.REP)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(ZAP_ENDPOINT)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            try:
                sock.close(0)
            except Exception:
                pass
            return
        self._ready.set()
        try:
            while not self._halt.is_set():
                if not sock.poll(100, zmq.POLLIN):
                    continue
                request = sock.recv_multipart()
                sock.send_multipart(self._reply(request))
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ETERM:
                log.exception("the ZAP handler stopped")
        finally:
            sock.close(0)

    def _reply(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 6 or request[0] != ZAP_VERSION:
            request_id = request[1] if len(request) > 1 else b""
            return [ZAP_VERSION, request_id, b"400", b"Bad ZAP request", b"", b""]
        request_id, domain, _address, _identity, mechanism = request[1:6]
        credentials = request[6:]
        if mechanism == b"NULL":
            return [ZAP_VERSION, request_id, b"200", b"OK", b"anonymous", b""]
        provider = self.providers.get(domain.decode("utf-8", "replace"))
        if mechanism != b"CURVE" or provider is None or len(credentials) != 1 \
                or len(credentials[0]) != 32:
            return [ZAP_VERSION, request_id, b"400", b"Not allowed", b"", b""]
        key = z85.encode(credentials[0])
        if not provider.callback(domain.decode("utf-8", "replace"), key):
            return [ZAP_VERSION, request_id, b"400", b"Unknown key", b"", b""]
        return [ZAP_VERSION, request_id, b"200", b"OK", key, b""]

    def stop(self, timeout_s: float = 5.0) -> None:
        self._halt.set()
        self.join(timeout_s)
        if self.is_alive():
            log.error("the ZAP handler thread did not stop within %.1f s", timeout_s)


class _AuthenticatorRegistry:
    """One ZAP handler per ZeroMQ context, shared by that context's server sockets (counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_context: dict[int, list] = {}         # id(context) -> [handler, users]

    def acquire(self, context: zmq.Context, domain: str, provider: _CredentialsProvider) -> None:
        with self._lock:
            entry = self._by_context.get(id(context))
            if entry is None:
                entry = self._by_context[id(context)] = [self._start(context), 0]
            entry[0].providers[domain] = provider
            entry[1] += 1

    @staticmethod
    def _start(context: zmq.Context) -> _ZapHandler:
        """A started handler; a just-stopped one may hold the ZAP endpoint for a moment
        (sockets close asynchronously), so binding is retried briefly."""
        deadline = time.monotonic() + 5.0
        while True:
            handler = _ZapHandler(context)
            try:
                handler.start_serving()
                return handler
            except zmq.ZMQError as exc:
                if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def release(self, context: zmq.Context, domain: str) -> None:
        with self._lock:
            entry = self._by_context.get(id(context))
            if entry is None:
                return
            entry[0].providers.pop(domain, None)
            entry[1] -= 1
            if entry[1] > 0:
                return
            del self._by_context[id(context)]
        entry[0].stop()


_AUTHENTICATORS = _AuthenticatorRegistry()


class CurveServerGuard:
    """What ``secure_server`` set up; ``close()`` after the socket is closed."""

    def __init__(self, context: zmq.Context, domain: str, provider: _CredentialsProvider) -> None:
        self.context = context
        self.domain = domain
        self.provider = provider
        self._closed = False

    @property
    def refused(self) -> int:
        """Handshakes refused for an unknown key so far."""
        return self.provider.refused

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _AUTHENTICATORS.release(self.context, self.domain)


def secure_server(sock: zmq.Socket, keys: CurveServerKeys | None) -> CurveServerGuard | None:
    """Make ``sock`` (not yet bound) a CURVE server admitting ``keys.allowed_keys``.

    Returns None (and changes nothing) when ``keys`` is None.
    """
    if keys is None:
        return None
    if not zmq.has("curve"):
        raise UserError("this ZeroMQ library was built without CURVE; cannot encrypt")
    domain = f"arnisd-{uuid.uuid4().hex[:16]}"
    provider = _CredentialsProvider(frozenset(keys.allowed_keys))
    _AUTHENTICATORS.acquire(sock.context, domain, provider)
    try:
        sock.setsockopt_string(zmq.ZAP_DOMAIN, domain)
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public_key)
        sock.setsockopt(zmq.CURVE_SERVER, 1)
    except BaseException:
        _AUTHENTICATORS.release(sock.context, domain)
        raise
    return CurveServerGuard(sock.context, domain, provider)


def secure_client(sock: zmq.Socket, keys: CurveClientKeys | None) -> None:
    """Make ``sock`` (not yet connected) a CURVE client of the server with ``keys.server_key``."""
    if keys is None:
        return
    if not zmq.has("curve"):
        raise UserError("this ZeroMQ library was built without CURVE; cannot encrypt")
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public_key)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret_key)


# --- the shared token --------------------------------------------------------------------------

MAX_ROUTING_ID_BYTES = 255


def routing_id(worker_id: str, token: str | None) -> bytes:
    """The ZeroMQ routing id a worker connects with.

    The coordinator's ROUTER hands a routing id over to whichever connection claims it last, and
    a worker's id is shown on the status page. With a token, the routing id is the worker id plus
    an HMAC of it keyed by the token, so nobody without the token can claim a registered worker's
    connection (and with it, its leases); the coordinator refuses registrations whose routing id
    does not match. Without a token anyone may register anyway: the worker id, as is.
    """
    name = worker_id.encode("utf-8", "replace")
    if token is None:
        return name[:MAX_ROUTING_ID_BYTES] or b"worker"
    tag = hmac.new(token.encode("utf-8", "surrogatepass"), b"arnisd-routing-id\0" + name,
                   "sha256").hexdigest()[:32].encode("ascii")
    return name[:MAX_ROUTING_ID_BYTES - len(tag) - 1] + b"#" + tag


def routing_id_matches(identity: bytes, worker_id: str, token: str | None) -> bool:
    """Whether ``identity`` is the routing id a holder of ``token`` gives ``worker_id``."""
    return token is None or hmac.compare_digest(identity, routing_id(worker_id, token))


def token_matches(presented, expected: str | None) -> bool:
    """Constant-time check of a presented token; anything goes when no token is configured."""
    if expected is None:
        return True
    if not isinstance(presented, str):
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def registration_refusal(identity: bytes, worker_id: str, presented_token,
                         token: str | None) -> str | None:
    """Why a worker's register is refused (the reason sent back), or None to admit it: a bad
    token, or a routing id other than the one a token holder gives ``worker_id`` (a client
    that could take over another worker's connection by claiming its id)."""
    if not token_matches(presented_token, token):
        return "bad token"
    if not routing_id_matches(identity, worker_id, token):
        return "routing id does not match"
    return None
