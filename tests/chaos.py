"""The fault suite of issue 12: hostile input and faults against the served service.

    python -m tests.chaos [--quick]        (make chaos)

Starts `mipomersen-cds serve` (gunicorn) on loopback with SQLite, PostgreSQL or Redis, nginx
from deploy/nginx/ where a probe needs it, runs each probe and prints one Markdown table:
requests sent, 5xx answers, requests hung (no answer within the probe's bound: 1 s for the
slow-client probes, 10 s otherwise) and records lost (a feedback item or a hook call answered
but not stored). `tests/test_chaos.py` runs the same probes with `--quick` sizes in `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
SIGN = "/cds-services/mipomersen-order-sign"
FEEDBACK = SIGN + "/feedback"
EXAMPLE = json.loads((ROOT / "examples" / "withhold-alt-5x-uln.json").read_text())
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
POSTGRES_URL = os.environ.get(
    "MIPOMERSEN_CDS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MIPOMERSEN_CDS_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


@dataclass
class Row:
    """One line of the table."""

    probe: str
    requests: int = 0
    server_errors: int = 0
    hung: int = 0
    lost: int = 0
    notes: list[str] = field(default_factory=list)

    def count(self, status: int | None) -> None:
        """Count one answer (None: none came in time)."""
        self.requests += 1
        if status is None:
            self.hung += 1
        elif status >= 500:
            self.server_errors += 1


# ------------------------------------------------------------------------ HTTP


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int | None, bytes]:
    """Send one request on a new connection; (None, b"") when no answer came within `timeout`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.read()
    except (TimeoutError, OSError, http.client.HTTPException):
        return None, b""
    finally:
        connection.close()


def hook_body(**changes: Any) -> bytes:
    """Return the withhold example with a fresh hookInstance (and `changes`)."""
    return json.dumps({**EXAMPLE, "hookInstance": str(uuid.uuid4()), **changes}).encode()


def feedback_body(card: str) -> bytes:
    item = {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"userComment": "chaos"},
        "outcomeTimestamp": "2026-11-23T12:00:00Z",
    }
    return json.dumps({"feedback": [item]}).encode()


# ------------------------------------------------------------------------ processes


class Service:
    """`mipomersen-cds serve` in its own process group, so it can be SIGKILLed whole."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, **options: Any) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.home = data_dir.parent / f"home-{self.port}"
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(self.home),
            "PYTHONWARNINGS": "ignore",
            "MIPOMERSEN_CDS_AUTH": "off",
            "MIPOMERSEN_CDS_DATA_DIR": str(data_dir),
            **(env or {}),
        }
        self.env.pop("XDG_RUNTIME_DIR", None)
        self.workers = options.get("workers", 2)
        self.threads = options.get("threads", 4)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cds_service.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if request(self.port, "GET", "/healthz", timeout=1)[0] == 200:
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("the service did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


class Nginx:
    """nginx with the repository's deploy/nginx/ files, proxying to `upstream_port`."""

    def __init__(self, workdir: Path, upstream_port: int) -> None:
        self.port = free_port()
        self.prefix = workdir / f"nginx-{self.port}"
        self.prefix.mkdir(parents=True)
        self.prefix.chmod(0o755)
        deploy = ROOT / "deploy" / "nginx"
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "".join(
            f"{kind}_temp_path {self.prefix}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.prefix / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {self.prefix}/nginx.pid;\n"
            f"error_log {self.prefix}/error.log;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\naccess_log off;\n{temp}"
            f"upstream mipomersen_cds {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}\n"
            f"server {{\nlisten 127.0.0.1:{self.port};\n"
            f"include {deploy}/limits.inc;\ninclude {deploy}/proxy.inc;\n"
            f"include {deploy}/errors.inc;\n}}\n}}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        assert NGINX is not None
        self.process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.prefix),
                "-c",
                str(self.prefix / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return self
            time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def __exit__(self, *_exc_info: object) -> None:
        if self.process:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class TcpProxy:
    """A loopback TCP relay to a database or Redis that can be cut (an outage) and restored."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.down = True
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


# ------------------------------------------------------------------------ probes


def audit_instances(data_dir: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(data_dir / "mipomersen-cds.sqlite3")) as database:
        rows = database.execute("SELECT hook_instance FROM audit_record").fetchall()
    return {row[0] for row in rows if row[0]}


def audit_count(data_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "mipomersen-cds.sqlite3")) as database:
        return int(database.execute("SELECT count(*) FROM audit_record").fetchone()[0])


def stored_cards(data_dir: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(data_dir / "mipomersen-cds.sqlite3")) as database:
        return {row[0] for row in database.execute("SELECT card_uuid FROM feedback").fetchall()}


def chunked_oversize(port: int) -> int | None:
    """11.5 MB chunked: valid JSON, then spaces to past 10 MiB, then GARBAGE."""

    def chunks() -> Iterator[bytes]:
        yield hook_body()
        for _ in range(23):
            yield b" " * (512 * 1024)
        yield b"GARBAGE"

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            SIGN,
            body=chunks(),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        return connection.getresponse().status
    except (TimeoutError, http.client.HTTPException):
        return None
    except OSError:
        return 413  # the service answered 413 and closed while the body was still coming
    finally:
        connection.close()


def hostile_bodies() -> list[tuple[str, str, bytes]]:
    """(name, path, body) of the issue's hostile bodies that reach the app."""
    text = hook_body().decode()
    value = '"value": 236'
    contained = json.loads(hook_body())
    contained["context"]["draftOrders"]["entry"][0]["resource"]["contained"] = [
        {"resourceType": "Medication", "id": f"m{index}", "code": {"text": "x"}}
        for index in range(50_000)
    ]
    fhir_auth = {"access_token": "t", "token_type": "Bearer", "scope": "s", "subject": "c"}
    expires = json.dumps(
        {
            **json.loads(text),
            "fhirServer": "https://ehr.example/fhir",
            "fhirAuthorization": {**fhir_auth, "expires_in": 0},
        }
    ).replace('"expires_in": 0', '"expires_in": 1' + "0" * 5000)
    comment = feedback_body(str(uuid.uuid4())).decode().replace("chaos", "\\ud800")
    late = (
        feedback_body(str(uuid.uuid4()))
        .decode()
        .replace("2026-11-23T12:00:00Z", "9999-12-31T23:59:59-14:00")
    )
    return [
        ("integer of 5000 digits", SIGN, (text[:-1] + ', "x": ' + "9" * 5000 + "}").encode()),
        (
            "valueQuantity of 4001 digits",
            SIGN,
            text.replace(value, '"value": ' + "9" * 4001).encode(),
        ),
        ("expires_in 10^5000", SIGN, expires.encode()),
        ("feedback integer of 5000 digits", FEEDBACK, b'{"feedback": [' + b"1" * 5000 + b"]}"),
        (
            "lone surrogate in hookInstance",
            SIGN,
            text.replace('"hookInstance": "', '"hookInstance": "\\ud800', 1).encode(),
        ),
        (
            "lone surrogate in patientId",
            SIGN,
            text.replace('"patientId": "', '"patientId": "\\udfff', 1).encode(),
        ),
        ("feedback lone surrogate", FEEDBACK, comment.encode()),
        ("feedback year past 9999", FEEDBACK, late.encode()),
        ("50,000 contained Medications", SIGN, json.dumps(contained).encode()),
    ]


def probe_hostile_input(workdir: Path, repeat: int) -> Row:
    """Every hostile body: 4xx, never a 5xx, and every hook call the app saw is audited."""
    row = Row(
        "Hostile bodies (chunked 11.5 MB, huge numbers, surrogates, 50k contained, 10 kB JWT)"
    )
    data_dir = workdir / "hostile"
    bodies = hostile_bodies()
    hook_calls = 0
    with Service(data_dir) as service:
        for _ in range(repeat):
            row.count(status := chunked_oversize(service.port))
            hook_calls += status == 413
            for _name, path, body in bodies:
                row.count(status := request(service.port, "POST", path, body)[0])
                hook_calls += path == SIGN and status is not None
            # A 10 kB claim makes a header over gunicorn's field limit: 431, an OperationOutcome.
            status, answer = request(
                service.port,
                "GET",
                "/cds-services",
                headers={"Authorization": "Bearer " + "a" * 10_240},
            )
            row.count(status)
            if status != 431 or json.loads(answer)["resourceType"] != "OperationOutcome":
                row.notes.append(f"10 kB header: {status}")
    row.lost = max(0, hook_calls - audit_count(data_dir))
    written = list(service.home.rglob("*"))
    if written:
        row.notes.append(f"written to HOME: {written}")
    return row


def probe_load(workdir: Path, clients: int, seconds: float) -> Row:
    """`clients` clients calling as fast as they can for `seconds`: no 5xx, all audited."""
    row = Row(f"Load: {clients} clients x {seconds:g} s")
    data_dir = workdir / "load"
    answered: list[str] = []
    lock = threading.Lock()
    with Service(data_dir, workers=3) as service:
        deadline = time.monotonic() + seconds

        def client() -> None:
            while time.monotonic() < deadline:
                instance = str(uuid.uuid4())
                status = request(service.port, "POST", SIGN, hook_body(hookInstance=instance))[0]
                with lock:
                    row.count(status)
                    if status == 200:
                        answered.append(instance)

        with ThreadPoolExecutor(clients) as pool:
            for _ in range(clients):
                pool.submit(client)
    row.lost = len(set(answered) - audit_instances(data_dir))
    return row


def probe_sigkill(workdir: Path, rounds: int, seconds: float) -> Row:
    """SIGKILL the whole server under load: every 200 (hook call or feedback) is stored."""
    row = Row(f"SIGKILL under load ({rounds} times): hook calls and feedback")
    data_dir = workdir / "sigkill"
    answered_hooks: list[str] = []
    answered_cards: list[str] = []
    lock = threading.Lock()
    for _ in range(rounds):
        service = Service(data_dir, workers=2).start()
        deadline = time.monotonic() + seconds

        def client(service: Service = service, deadline: float = deadline) -> None:
            while time.monotonic() < deadline + 1:
                instance = str(uuid.uuid4())
                status, body = request(service.port, "POST", SIGN, hook_body(hookInstance=instance))
                if status == 200:
                    card = json.loads(body)["cards"][0]["uuid"]
                    feedback = request(service.port, "POST", FEEDBACK, feedback_body(card))[0]
                    with lock:
                        answered_hooks.append(instance)
                        if feedback == 200:
                            answered_cards.append(card)
                        row.requests += 2
                        row.server_errors += feedback is not None and feedback >= 500
                elif status is None:
                    return  # the server is gone: connections are refused, not hung
                else:
                    with lock:
                        row.count(status)

        with ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(client)
            time.sleep(seconds)
            service.kill()
    lost_hooks = set(answered_hooks) - audit_instances(data_dir)
    lost_cards = set(answered_cards) - stored_cards(data_dir)
    row.lost = len(lost_hooks) + len(lost_cards)
    row.notes.append(f"{len(answered_hooks)} hook calls and {len(answered_cards)} feedback 200s")
    return row


def probe_database_outage(workdir: Path, calls: int) -> list[Row]:
    """PostgreSQL cut behind a relay: cards still come, feedback 503, /readyz names it."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    schema = f"chaos_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        f"host=127.0.0.1 port={server.port or 5432} user={server.username} "
        f"dbname={server.database}",
        autocommit=True,
    ) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    relay = TcpProxy(server.port or 5432)
    url = server.set(port=relay.port).update_query_dict({"options": f"-c search_path={schema}"})
    env = {
        "MIPOMERSEN_CDS_DATABASE_URL": url.render_as_string(hide_password=False),
        "MIPOMERSEN_CDS_DATABASE_TIMEOUT_SECONDS": "1",
    }
    hooks, feedback = (
        Row("PostgreSQL outage: hook calls (cards expected)"),
        Row("PostgreSQL outage: feedback (503 expected)"),
    )
    try:
        subprocess.run(
            [sys.executable, "-m", "cds_service.cli", "db", "upgrade"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        with Service(workdir / "postgres", env) as service:
            relay.cut()
            for _ in range(calls):
                status, body = request(service.port, "POST", SIGN, hook_body())
                hooks.count(status)
                if status != 200 or not json.loads(body)["cards"]:
                    hooks.notes.append(f"hook {status}")
                feedback.count(
                    request(service.port, "POST", FEEDBACK, feedback_body(str(uuid.uuid4())))[0]
                )
            status, body = request(service.port, "GET", "/readyz")
            if status != 503 or "database" not in json.loads(body).get("failed", []):
                hooks.notes.append(f"/readyz during the outage: {status}")
            relay.restore()
            time.sleep(0.5)
            card = str(uuid.uuid4())
            if request(service.port, "POST", FEEDBACK, feedback_body(card))[0] != 200:
                feedback.notes.append("feedback did not recover")
            if request(service.port, "GET", "/readyz")[0] != 200:
                feedback.notes.append("/readyz did not recover")
    finally:
        relay.close()
        with psycopg.connect(
            f"host=127.0.0.1 port={server.port or 5432} user={server.username} "
            f"dbname={server.database}",
            autocommit=True,
        ) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    return [hooks, feedback]


def probe_replay_outage(workdir: Path, calls: int) -> Row:
    """Redis cut behind a relay: hook calls 503 (fail closed), /readyz names it, then recovers."""
    from tests.tokens import bearer, sandbox_token, trusted_issuers

    row = Row("Redis replay store outage: hook calls (503 expected)")
    redis_port = int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    relay = TcpProxy(redis_port)
    try:
        port_holder: dict[str, int] = {}
        service = Service(workdir / "redis", {})
        public = f"http://127.0.0.1:{service.port}"
        port_holder["port"] = service.port
        service.env.update(
            {
                "MIPOMERSEN_CDS_AUTH": "required",
                "MIPOMERSEN_CDS_TRUSTED_ISSUERS": trusted_issuers(),
                "MIPOMERSEN_CDS_PUBLIC_URL": public,
                "MIPOMERSEN_CDS_REPLAY_STORE": f"redis://127.0.0.1:{relay.port}/3",
            }
        )
        with service:
            relay.cut()
            for _ in range(calls):
                token = sandbox_token(aud=public + SIGN)
                row.count(
                    request(service.port, "POST", SIGN, hook_body(), headers=bearer(token))[0]
                )
            status, body = request(service.port, "GET", "/readyz")
            if status != 503 or "replay_store" not in json.loads(body).get("failed", []):
                row.notes.append(f"/readyz during the outage: {status}")
            relay.restore()
            token = sandbox_token(aud=public + SIGN)
            if request(service.port, "POST", SIGN, hook_body(), headers=bearer(token))[0] != 200:
                row.notes.append("hook calls did not recover")
    finally:
        relay.close()
    return row


@contextlib.contextmanager
def full_disk(path: Path, size_mb: int = 16) -> Iterator[Callable[[], None]]:
    """Mount a small tmpfs at `path` (root only); the callable fills it to the last byte."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True
    )

    def fill() -> None:
        for name, size in (("filler", 65536), ("filler-small", 1)):
            with contextlib.suppress(OSError), open(path / name, "wb", buffering=0) as filler:
                while True:
                    filler.write(b"\0" * size)

    try:
        yield fill
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def probe_full_disk(workdir: Path, calls: int) -> list[Row]:
    """A full data disk: cards for every hook call, 503 for feedback, /readyz says so."""
    hooks = Row("Full data disk: hook calls (cards expected)")
    feedback = Row("Full data disk: feedback (503 expected)")
    if os.geteuid() != 0:
        hooks.notes.append("not run: mounting a small tmpfs needs root")
        return [hooks, feedback]
    data_dir = workdir / "full"
    with full_disk(data_dir) as fill, Service(data_dir, workers=2) as service:
        for _ in range(3):  # warm: records written while there is room
            request(service.port, "POST", SIGN, hook_body())
        fill()
        for _ in range(calls):
            status, body = request(service.port, "POST", SIGN, hook_body())
            hooks.count(status)
            if status != 200 or not json.loads(body)["cards"]:
                hooks.notes.append(f"hook {status}")
            status = request(service.port, "POST", FEEDBACK, feedback_body(str(uuid.uuid4())))[0]
            feedback.count(status)
            if status != 503:
                feedback.notes.append(f"feedback {status}")
        status, body = request(service.port, "GET", "/readyz")
        if status != 503 or "database" not in json.loads(body).get("failed", []):
            hooks.notes.append(f"/readyz with the disk full: {status} {body[:200]!r}")
        alive = service.process is not None and service.process.poll() is None
        if not alive:
            hooks.notes.append("the server died")
    return [hooks, feedback]


def slow_clients(port: int, count: int, *, body: bool, stop: threading.Event) -> threading.Thread:
    """Open `count` connections sending a header (or a body) one byte a second until `stop`."""

    def run() -> None:
        sockets: list[socket.socket] = []
        for _ in range(count):
            with contextlib.suppress(OSError):
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                head = f"POST {SIGN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                if body:
                    head += "Content-Length: 100000\r\n\r\n{"
                sock.sendall(head.encode())
                sockets.append(sock)
        while not stop.wait(1.0):
            for sock in list(sockets):
                try:
                    sock.sendall(b" " if body else b"X")
                except OSError:  # dropped by the server: reconnect, as an attacker would
                    sockets.remove(sock)
                    with contextlib.suppress(OSError):
                        again = socket.create_connection(("127.0.0.1", port), timeout=2)
                        again.sendall(f"POST {SIGN} HTTP/1.1\r\nHost: x\r\n".encode())
                        sockets.append(again)
        for sock in sockets:
            sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def probe_slow_clients(workdir: Path, seconds: float, *, through_nginx: bool) -> Row:
    """32 slow-header and 32 slow-body clients; normal hook calls must answer within 1 s."""
    where = "through nginx (deploy/nginx)" if through_nginx else "gunicorn reached directly"
    row = Row(f"32 slow-header + 32 slow-body clients, {where}")
    if through_nginx and NGINX is None:
        row.notes.append("not run: nginx is not installed (apt-get install nginx)")
        return row
    latencies: list[float] = []
    with Service(
        workdir / ("slow-nginx" if through_nginx else "slow-direct"), workers=2
    ) as service:
        proxy = Nginx(workdir, service.port) if through_nginx else contextlib.nullcontext()
        with proxy as front:
            port = front.port if isinstance(front, Nginx) else service.port
            stop = threading.Event()
            threads = [slow_clients(port, 32, body=flag, stop=stop) for flag in (False, True)]
            time.sleep(2)  # every slow client connected and started
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.monotonic()
                status = request(port, "POST", SIGN, hook_body(), timeout=5)[0]
                elapsed = time.monotonic() - started
                latencies.append(elapsed)
                row.count(status if elapsed <= 1.0 else None)
                time.sleep(0.1)
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
    latencies.sort()
    row.notes.append(f"slowest normal call {latencies[-1]:.2f} s" if latencies else "no calls")
    return row


# ------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Sizes:
    repeat: int
    clients: int
    load_seconds: float
    kill_rounds: int
    kill_seconds: float
    outage_calls: int
    slow_seconds: float


QUICK = Sizes(1, 8, 2, 1, 1.5, 5, 3)
FULL = Sizes(3, 32, 30, 3, 4, 30, 20)


def run_probes(sizes: Sizes, workdir: Path) -> list[Row]:
    """Run every probe and return the rows, in the table's order."""
    return [
        probe_hostile_input(workdir, sizes.repeat),
        probe_load(workdir, sizes.clients, sizes.load_seconds),
        probe_sigkill(workdir, sizes.kill_rounds, sizes.kill_seconds),
        *probe_database_outage(workdir, sizes.outage_calls),
        probe_replay_outage(workdir, sizes.outage_calls),
        *probe_full_disk(workdir, sizes.outage_calls),
        probe_slow_clients(workdir, sizes.slow_seconds, through_nginx=True),
        probe_slow_clients(workdir, sizes.slow_seconds, through_nginx=False),
    ]


def table(rows: list[Row]) -> str:
    """Return the rows as the Markdown table of the README's reliability section."""
    lines = [
        "| Probe | Requests | 5xx | Hung | Records lost | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        notes = "; ".join(dict.fromkeys(row.notes))[:300]
        lines.append(
            f"| {row.probe} | {row.requests} | {row.server_errors} | {row.hung} | {row.lost} "
            f"| {notes} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (as in make test)")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mipomersen-chaos-") as directory:
        rows = run_probes(QUICK if arguments.quick else FULL, Path(directory))
    print(table(rows))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
