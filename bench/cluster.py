"""Several mipomersen-cds instances behind nginx, on this machine (issue 15).

`make cluster` (`python -m bench.cluster up`), the cluster tests (`tests/test_cluster.py`) and
the cluster benchmark (`python -m bench.cluster measure`) start the same topology, each part a
local process on its own loopback port:

- Debian's nginx, load-balancing, run in the foreground with a configuration generated from
  `deploy/cluster/nginx.conf.template` into a temporary directory (never /etc/nginx);
- N instances of `mipomersen-cds serve` (gunicorn), each with its own data directory;
- the local PostgreSQL, in a database of its own (created when missing), migrated with
  `mipomersen-cds db upgrade` before any instance starts: first migrate, then serve;
- the local Redis, in a database number of its own, as the shared JWT replay store.

Authentication is on, as deployed: the harness plays the EHR, generates its key pair, trusts
the public key (MIPOMERSEN_CDS_TRUSTED_ISSUERS) and signs a fresh JWT for every call, with
`aud` = nginx's URL + path (MIPOMERSEN_CDS_PUBLIC_URL is nginx's URL on every instance).

It also plays the orchestrator for a rolling restart: SIGTERM to one instance, wait until its
`/readyz` answers 503 (draining, MIPOMERSEN_CDS_DRAIN_SECONDS), take it out of nginx's upstream
(reload), let it stop, start its replacement, wait for `/readyz` 200, put it back (reload), as
Kubernetes' readiness probe and endpoints do.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "cluster" / "nginx.conf.template"
EXAMPLE = ROOT / "examples" / "withhold-alt-5x-uln.json"
SIGN_PATH = "/cds-services/mipomersen-order-sign"
FEEDBACK_PATH = SIGN_PATH + "/feedback"
DISCOVERY_PATH = "/cds-services"
ISSUER = "https://ehr.cluster.example"
KEY_ID = "cluster-ehr-1"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/mipomersen_cluster"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
START_SECONDS = 60.0  # an instance's first /readyz 200 (imports and FHIR models, on 2 busy cores)


class ClusterError(RuntimeError):
    """A part of the cluster did not start or stop as expected."""


def find_nginx() -> str | None:
    """Return the nginx executable (Debian installs it in /usr/sbin), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """What to start: how many instances, their gunicorn size, and where the shared stores are."""

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    instances: int = 2
    workers: int = 2
    threads: int = 4
    drain_seconds: int = 2
    fresh: bool = False  # drop the database and empty the Redis database first


class Ehr:
    """The CDS client: an ES384 key pair it signs every call's JWT with, as CDS Hooks requires."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP384R1())

    def trusted_issuers(self) -> str:
        """Return MIPOMERSEN_CDS_TRUSTED_ISSUERS trusting this EHR's public key (pinned)."""
        jwk = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": KEY_ID, "alg": "ES384", "use": "sig"})
        return json.dumps({ISSUER: {"jwks": {"keys": [jwk]}}})

    def token(self, audience: str) -> str:
        """Return a fresh JWT (new `jti`) for a call to `audience`, valid for five minutes."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(
            claims, self.private_key, algorithm="ES384", headers={"kid": KEY_ID, "typ": "JWT"}
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP exchange: status 0 when no HTTP answer came back (the connection failed)."""

    status: int
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    token: str | None = None,
    timeout: float = 15.0,
) -> Answer:
    """Send one request on a new connection to 127.0.0.1:`port` (Connection: close)."""
    headers = {"Connection": "close"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.read())
    except (OSError, http.client.HTTPException):
        return Answer(0)
    finally:
        connection.close()


def hook_request_body(hook_instance: str) -> bytes:
    """Return the withhold example (one card) as a new hook call."""
    body = json.loads(EXAMPLE.read_bytes())
    body["hookInstance"] = hook_instance
    return json.dumps(body).encode()


def feedback_body(card_uuid: str) -> bytes:
    """Return feedback overriding `card_uuid`, as a CDS client reports it."""
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    item = {"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": timestamp}
    return json.dumps({"feedback": [item]}).encode()


@dataclass(slots=True)
class Instance:
    """One `mipomersen-cds serve` (a gunicorn master and its workers, one process group)."""

    name: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    generation: int = 0  # how many times it was started


@dataclass(slots=True)
class Cluster:
    """nginx in front of N instances, sharing one PostgreSQL database and one Redis database."""

    settings: ClusterSettings
    run_dir: Path
    ehr: Ehr = field(default_factory=Ehr)
    nginx_port: int = 0
    instances: list[Instance] = field(default_factory=list)
    in_rotation: set[str] = field(default_factory=set)
    nginx: subprocess.Popen[bytes] | None = None
    nginx_generation: int = 0

    # ------------------------------------------------------------------ start and stop
    def start(self) -> None:
        """Prepare the stores, migrate, start the instances, then nginx in front of them."""
        nginx = find_nginx()
        if nginx is None:
            raise ClusterError("nginx is not installed (apt-get install nginx)")
        self.run_dir.chmod(0o755)  # nginx's workers run as nobody and write their temp files
        self.nginx_port = free_port()
        prepare_database(self.settings.database_url, fresh=self.settings.fresh)
        prepare_redis(self.settings.redis_url, fresh=self.settings.fresh)
        migrated = self.cli("db", "upgrade")
        if migrated.returncode != 0:
            raise ClusterError(f"db upgrade failed: {migrated.stderr.strip()}")
        for index in range(self.settings.instances):
            name = f"instance-{index + 1}"
            data_dir = self.run_dir / name
            data_dir.mkdir()
            self.instances.append(
                Instance(name, free_port(), data_dir, self.run_dir / f"{name}.log")
            )
        for instance in self.instances:
            self.start_instance(instance, wait=False)
        for instance in self.instances:
            self.wait_ready(instance)
            self.in_rotation.add(instance.name)
        self._write_nginx_config()
        with (self.run_dir / "nginx.out").open("wb") as nginx_output:
            self.nginx = subprocess.Popen(
                [
                    nginx,
                    "-p",
                    str(self.run_dir),
                    "-c",
                    str(self.run_dir / "nginx.conf"),
                    "-e",
                    str(self.run_dir / "error.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=nginx_output,
                start_new_session=True,
            )
        self._wait_for_generation()

    def stop(self) -> None:
        """Stop nginx and every instance (SIGTERM, then SIGKILL after a while)."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # nginx's graceful shutdown
            _wait_or_kill(self.nginx, 10)
        for instance in self.instances:
            if instance.process is not None and instance.process.poll() is None:
                # A second SIGTERM would cut the drain short: send one, then wait it out.
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            if instance.process is not None:
                _wait_or_kill(instance.process, self.settings.drain_seconds + 15)

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ instances
    def environment(self) -> dict[str, str]:
        """Return the environment every instance and CLI command of the cluster runs with."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MIPOMERSEN_CDS_")}
        return {
            **inherited,
            "PYTHONWARNINGS": "ignore",
            "MIPOMERSEN_CDS_DATABASE_URL": self.settings.database_url,
            "MIPOMERSEN_CDS_REPLAY_STORE": self.settings.redis_url,
            "MIPOMERSEN_CDS_TRUSTED_ISSUERS": self.ehr.trusted_issuers(),
            "MIPOMERSEN_CDS_PUBLIC_URL": self.base_url,
            "MIPOMERSEN_CDS_DRAIN_SECONDS": str(self.settings.drain_seconds),
            "MIPOMERSEN_CDS_DATA_DIR": str(self.run_dir / "cli"),
        }

    def start_instance(
        self, instance: Instance, *, wait: bool = True, shared_stores: bool = True
    ) -> None:
        """Start (or restart) `instance` on its port, in a process group of its own.

        Without `shared_stores` it keeps its audit trail and used JWT ids in SQLite files in
        its own data directory (one host's defaults), for comparison.
        """
        command = [
            sys.executable, "-m", "cds_service.cli", "serve", "--host", "127.0.0.1",
            "--port", str(instance.port), "--workers", str(self.settings.workers),
            "--threads", str(self.settings.threads),
        ]  # fmt: skip
        env = {**self.environment(), "MIPOMERSEN_CDS_DATA_DIR": str(instance.data_dir)}
        if not shared_stores:
            del env["MIPOMERSEN_CDS_DATABASE_URL"], env["MIPOMERSEN_CDS_REPLAY_STORE"]
        log = instance.log_path.open("ab")
        instance.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        instance.generation += 1
        if wait:
            self.wait_ready(instance)

    def wait_ready(self, instance: Instance) -> None:
        """Wait until `instance` answers /readyz with 200."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if instance.process is not None and instance.process.poll() is not None:
                raise ClusterError(f"{instance.name} exited: see {instance.log_path}")
            if request(instance.port, "GET", "/readyz", timeout=2).status == 200:
                return
            time.sleep(0.1)
        raise ClusterError(f"{instance.name} not ready after {START_SECONDS} s")

    def kill(self, instance: Instance) -> float:
        """SIGKILL the instance's master and workers at once, as when its machine is lost.

        Returns the moment (time.monotonic) its port was seen refusing connections: until
        then the kernel may still queue a connection on the dying socket, and reset it.
        """
        assert instance.process is not None
        os.killpg(instance.process.pid, signal.SIGKILL)
        instance.process.wait()
        while request(instance.port, "GET", "/healthz", timeout=1).status != 0:
            time.sleep(0.005)
        return time.monotonic()

    def error_log(self) -> str:
        """Return nginx's error log: every failed attempt at an instance is logged there."""
        return (self.run_dir / "error.log").read_text(errors="replace")

    def rolling_restart(self) -> list[RestartStep]:
        """Restart every instance in turn, taking each out of rotation once it drains."""
        steps = []
        for instance in self.instances:
            assert instance.process is not None
            signalled = time.monotonic()
            instance.process.send_signal(signal.SIGTERM)
            readyz = self._wait_until_draining(instance)
            self.in_rotation.discard(instance.name)
            self.reload_nginx()
            out_of_rotation = time.monotonic() - signalled
            exit_code = instance.process.wait(timeout=self.settings.drain_seconds + 30)
            stopped = time.monotonic() - signalled
            self.start_instance(instance)
            self.in_rotation.add(instance.name)
            self.reload_nginx()
            steps.append(RestartStep(instance.name, readyz, exit_code, out_of_rotation, stopped))
        return steps

    def _wait_until_draining(self, instance: Instance) -> Answer:
        deadline = time.monotonic() + self.settings.drain_seconds + 5
        while time.monotonic() < deadline:
            answer = request(instance.port, "GET", "/readyz", timeout=2)
            if answer.status == 503:
                return answer
            time.sleep(0.02)
        raise ClusterError(f"{instance.name} never answered /readyz 503 while draining")

    # ------------------------------------------------------------------ nginx
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def _write_nginx_config(self) -> None:
        self.nginx_generation += 1
        servers = "\n".join(
            f"        server 127.0.0.1:{instance.port} max_fails=1 fail_timeout=5s"
            + ("" if instance.name in self.in_rotation else " down")
            + f";  # {instance.name}"
            for instance in self.instances
        )
        config = string.Template(TEMPLATE.read_text()).safe_substitute(
            run_dir=self.run_dir,
            port=self.nginx_port,
            servers=servers,
            generation=self.nginx_generation,
        )
        if "${" in config:
            raise ClusterError(f"{TEMPLATE} has a field the harness does not fill in")
        (self.run_dir / "nginx.conf").write_text(config)

    def reload_nginx(self) -> None:
        """Write the upstream for the instances in rotation and reload nginx (SIGHUP)."""
        assert self.nginx is not None
        self._write_nginx_config()
        self.nginx.send_signal(signal.SIGHUP)
        self._wait_for_generation()

    def _wait_for_generation(self) -> None:
        """Wait until nginx's workers run the configuration just written."""
        expected = str(self.nginx_generation).encode()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.nginx is not None and self.nginx.poll() is not None:
                log = (self.run_dir / "error.log").read_text(errors="replace")
                raise ClusterError(f"nginx exited: {log[-2000:]}")
            if request(self.nginx_port, "GET", "/__cluster/generation", timeout=1).body == expected:
                return
            time.sleep(0.02)
        raise ClusterError("nginx did not load its new configuration")

    # ------------------------------------------------------------------ clients
    def call(self, method: str, path: str, body: bytes | None = None, *, port: int = 0) -> Answer:
        """Send a signed request through nginx, or straight to an instance's `port`."""
        token = self.ehr.token(self.base_url + path)
        return request(port or self.nginx_port, method, path, body=body, token=token)

    def cli(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run `mipomersen-cds ARGUMENTS` against the cluster's database."""
        return subprocess.run(
            [sys.executable, "-m", "cds_service.cli", *arguments],
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stored(self) -> StoredRecords:
        """Return the hookInstances audited and the cards with feedback, from PostgreSQL."""
        engine = create_engine(self.settings.database_url)
        try:
            with engine.connect() as connection:
                audited = connection.execute(
                    text("SELECT hook_instance, status FROM audit_record")
                ).all()
                feedback = connection.execute(text("SELECT card_uuid FROM feedback")).all()
        finally:
            engine.dispose()
        return StoredRecords(
            audited={row[0]: row[1] for row in audited},
            feedback_cards={row[0] for row in feedback},
        )


@dataclass(frozen=True, slots=True)
class RestartStep:
    """What one instance did during a rolling restart."""

    instance: str
    readyz_while_draining: Answer
    exit_code: int
    seconds_to_leave_rotation: float
    seconds_to_stop: float


@dataclass(frozen=True, slots=True)
class StoredRecords:
    """What the shared database holds: audited hookInstance -> status, cards with feedback."""

    audited: dict[str, int]
    feedback_cards: set[str]


def _wait_or_kill(process: subprocess.Popen[bytes], seconds: float) -> None:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_database(url: str, *, fresh: bool) -> None:
    """Create the PostgreSQL database of `url` if missing (dropped first when `fresh`)."""
    target = make_url(url)
    name = target.database
    if not name or not name.replace("_", "").isalnum():
        raise ClusterError(f"database name {name!r}: use letters, digits and _ only")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if fresh:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists is None:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def prepare_redis(url: str, *, fresh: bool) -> None:
    """Check that Redis answers at `url`; empty that database number when `fresh`."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
        if fresh:
            client.flushdb()
    finally:
        client.close()


@contextmanager
def running_cluster(settings: ClusterSettings) -> Iterator[Cluster]:
    """Start a cluster in a new temporary directory; stop it and remove the directory after."""
    run_dir = Path(tempfile.mkdtemp(prefix="mipomersen-cluster-"))
    try:
        with Cluster(settings, run_dir) as cluster:
            yield cluster
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# ---------------------------------------------------------------------- traffic
@dataclass(frozen=True, slots=True)
class Exchange:
    """One call the traffic made: kind (hook, feedback, discovery), key, status, when."""

    kind: str
    key: str  # hookInstance of a hook call, card uuid of feedback
    status: int
    started: float
    ended: float


class Traffic:
    """Clients calling through nginx until stopped: hook call, feedback on its card, discovery.

    Each client runs the loop a CDS client does, each call with its own JWT, on a new
    connection; every exchange is recorded for the checks that follow.
    """

    def __init__(self, cluster: Cluster, *, clients: int = 4) -> None:
        self._cluster = cluster
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self, kind: str, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for exchange in self.exchanges
                if exchange.kind == kind and (status is None or exchange.status == status)
            )

    def _record(self, kind: str, key: str, answer: Answer, started: float) -> None:
        with self._lock:
            self.exchanges.append(Exchange(kind, key, answer.status, started, time.monotonic()))

    def _run(self) -> None:
        while not self._stop.is_set():
            hook_instance = str(uuid.uuid4())
            started = time.monotonic()
            answer = self._cluster.call("POST", SIGN_PATH, hook_request_body(hook_instance))
            self._record("hook", hook_instance, answer, started)
            if answer.status == 200:
                card = answer.json()["cards"][0]["uuid"]
                started = time.monotonic()
                answer = self._cluster.call("POST", FEEDBACK_PATH, feedback_body(card))
                self._record("feedback", card, answer, started)
            started = time.monotonic()
            self._record("discovery", "", self._cluster.call("GET", DISCOVERY_PATH), started)


# ---------------------------------------------------------------------- throughput
@dataclass(frozen=True, slots=True)
class Throughput:
    """Closed-loop hook calls through one front end for a fixed time."""

    setup: str
    instances: int
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    def row(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms) or [float("nan")]
        return {
            "setup": self.setup,
            "instances": self.instances,
            "clients": self.clients,
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(statistics.median(ordered), 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
            "errors": self.errors,
        }


def drive(cluster: Cluster, *, port: int, clients: int, seconds: float, setup: str) -> Throughput:
    """Post hook calls from `clients` threads to `port` for `seconds`; JWTs signed beforehand.

    Signing (ES384) happens before the clock starts, so the load generator, which shares the
    cores with the servers, spends its time sending and receiving only.
    """
    tokens: queue.SimpleQueue[str] = queue.SimpleQueue()
    for _ in range(int(seconds * 300)):
        tokens.put(cluster.ehr.token(cluster.base_url + SIGN_PATH))
    body = hook_request_body(str(uuid.uuid4()))
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            try:
                token = tokens.get_nowait()
            except queue.Empty:
                token = cluster.ehr.token(cluster.base_url + SIGN_PATH)
            started = time.perf_counter()
            answer = request(port, "POST", SIGN_PATH, body=body, token=token)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if answer.status != 200:
                    errors.append(answer.status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    count = 1 if port != cluster.nginx_port else len(cluster.in_rotation)
    return Throughput(setup, count, clients, len(latencies), len(errors), elapsed, tuple(latencies))


def measure(
    settings: ClusterSettings, *, counts: Iterable[int], clients: int, seconds: float
) -> list[Throughput]:
    """Measure hook-call throughput through nginx with each number of instances in `counts`.

    With one instance it is also measured straight at the instance, without nginx, so that
    nginx's own share is seen apart from the coordination through PostgreSQL and Redis.
    """
    results = []
    for count in counts:
        with running_cluster(
            ClusterSettings(**{**_as_dict(settings), "instances": count, "fresh": True})
        ) as cluster:
            drive(cluster, port=cluster.nginx_port, clients=clients, seconds=2, setup="warm-up")
            if count == 1:
                results.append(_measure_single_host(cluster, clients=clients, seconds=seconds))
                direct = drive(
                    cluster,
                    port=cluster.instances[0].port,
                    clients=clients,
                    seconds=seconds,
                    setup="1 instance, no nginx, PostgreSQL + Redis",
                )
                results.append(direct)
            results.append(
                drive(
                    cluster,
                    port=cluster.nginx_port,
                    clients=clients,
                    seconds=seconds,
                    setup=f"nginx + {count} instance{'s' if count > 1 else ''}",
                )
            )
    return results


def _measure_single_host(cluster: Cluster, *, clients: int, seconds: float) -> Throughput:
    """Measure one instance with one host's stores (SQLite audit and replay), no nginx."""
    data_dir = cluster.run_dir / "single-host"
    data_dir.mkdir()
    alone = Instance("single-host", free_port(), data_dir, cluster.run_dir / "single-host.log")
    cluster.start_instance(alone, shared_stores=False)
    try:
        drive(cluster, port=alone.port, clients=clients, seconds=2, setup="warm-up")
        return drive(
            cluster,
            port=alone.port,
            clients=clients,
            seconds=seconds,
            setup="1 instance, no nginx, SQLite (one host)",
        )
    finally:
        assert alone.process is not None
        alone.process.send_signal(signal.SIGINT)  # stop at once, no drain
        _wait_or_kill(alone.process, 15)


def _as_dict(settings: ClusterSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in ClusterSettings.__slots__}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Render rows as a Markdown table (the header from the first row's keys)."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the cluster and keep it up until Ctrl-C")
    up.add_argument("--instances", type=int, default=2)
    up.add_argument("--fresh", action="store_true", help="empty the database and Redis first")
    token = commands.add_parser("token", help="print a JWT for a call to URL, signed by KEY")
    token.add_argument("key", type=Path, help="ehr-key.pem, in the directory `up` printed")
    token.add_argument("url", help="the URL called, e.g. http://127.0.0.1:PORT/cds-services")
    bench = commands.add_parser("measure", help="throughput with 1, 2 and 3 instances")
    bench.add_argument("--seconds", type=float, default=20)
    bench.add_argument("--clients", type=int, default=16)
    arguments = parser.parse_args(argv)
    settings = ClusterSettings(
        database_url=arguments.database_url,
        redis_url=arguments.redis_url,
        workers=arguments.workers,
    )
    if arguments.command == "token":
        return _print_token(arguments.key, arguments.url)
    if arguments.command == "measure":
        results = measure(
            settings, counts=(1, 2, 3), clients=arguments.clients, seconds=arguments.seconds
        )
        _print(markdown_table([result.row() for result in results]))
        return 0
    up_settings = ClusterSettings(
        **{**_as_dict(settings), "instances": arguments.instances, "fresh": arguments.fresh}
    )
    with running_cluster(up_settings) as cluster:
        key = cluster.run_dir / "ehr-key.pem"
        key.write_bytes(cluster.ehr.private_pem())
        _print(f"nginx:      {cluster.base_url}   (logs and config in {cluster.run_dir})")
        for instance in cluster.instances:
            _print(f"{instance.name}: http://127.0.0.1:{instance.port}   log {instance.log_path}")
        _print(f"database:   {make_url(settings.database_url).render_as_string()}")
        _print(f"JWT store:  {settings.redis_url}")
        url = cluster.base_url + DISCOVERY_PATH
        _print(
            "\nEvery call needs a fresh JWT, e.g.:\n"
            f'  curl -H "Authorization: Bearer $(python -m bench.cluster token {key} {url})"'
            f" {url}\nCtrl-C stops the cluster."
        )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            _print("stopping")
    return 0


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _print_token(key_path: Path, url: str) -> int:
    ehr = Ehr()
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    ehr.private_key = key
    _print(ehr.token(url))
    return 0


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
