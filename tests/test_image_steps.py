"""The Dockerfile's install and start steps, run as a plain shell script in a fresh directory.

No image can be built or pulled here, so the Dockerfile is read and replayed on this machine:
- the `build` stage: each ENV is set (its absolute paths moved under a temporary root), each
  WORKDIR created, each COPY copied from this checkout, and each RUN run verbatim by `sh -ec`:
  a fresh virtual environment, then `pip install --constraint constraints.txt .` into it
  (from the package index, like `make test`'s own `.venv`);
- the `runtime` stage: its ENV and WORKDIR the same way; its one RUN (creating the service's
  user and data directory) is not run, since it would add a user to this machine, and is
  checked as text instead; then `mipomersen-cds db upgrade`, the CMD (bound to 127.0.0.1 and
  a free port instead of 0.0.0.0:8080), the HEALTHCHECK command, a signed discovery call, and
  the STOPSIGNAL with a clean exit.

constraints.txt is written by `make lock`; a checkout without it (before that target exists)
replays the steps with the versions installed in this test's own environment pinned instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port
from tests.test_server import get
from tests.tokens import bearer, sandbox_token, trusted_issuers

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True, slots=True)
class Instruction:
    stage: str
    keyword: str
    arguments: str


def read_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Return the instructions, continuation lines joined, comments dropped, by stage name."""
    instructions: list[Instruction] = []
    stage = ""
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, arguments = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)$", arguments, re.IGNORECASE)
            stage = match.group(1) if match else arguments
        instructions.append(Instruction(stage, keyword, arguments.strip()))
    return instructions


def _stage(stage: str) -> list[Instruction]:
    return [step for step in read_dockerfile() if step.stage == stage]


def test_the_image_is_multi_stage_slim_and_runs_as_a_user_of_its_own() -> None:
    steps = read_dockerfile()
    (base,) = [s.arguments for s in steps if s.keyword == "ARG" and "PYTHON_IMAGE" in s.arguments]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim-\w+", base)
    assert [s.stage for s in steps if s.keyword == "FROM"] == ["build", "runtime"]
    runtime = _stage("runtime")
    (user,) = [s.arguments for s in runtime if s.keyword == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    (create_user,) = [s.arguments for s in runtime if s.keyword == "RUN"]
    assert f"--uid {user.split(':')[0]}" in create_user and "useradd --system" in create_user
    copies = [s.arguments for s in runtime if s.keyword == "COPY"]
    assert copies == ["--from=build /opt/mipomersen-cds /opt/mipomersen-cds"]
    (healthcheck,) = [s.arguments for s in runtime if s.keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    installs = [s.arguments for s in _stage("build") if "pip" in s.arguments]
    assert installs and all("--constraint constraints.txt" in text for text in installs)


class _Replay:
    """Replays Dockerfile stages under `root`, a stand-in for the image's file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MIPOMERSEN_CDS_", "VIRTUAL_ENV", "PYTHON"))
        }
        shims = root / "shims"
        shims.mkdir(parents=True)
        (shims / "python").symlink_to(sys.executable)  # the base image's `python`
        self.env["PATH"] = f"{shims}:{self.env['PATH']}"
        self.workdir = root

    def path(self, image_path: str) -> str:
        return str(self.root / image_path.lstrip("/"))

    def run(self, step: Instruction) -> None:
        if step.keyword == "ENV":
            for assignment in shlex.split(step.arguments):
                name, _, value = assignment.partition("=")
                parts = [
                    self.env["PATH"]
                    if part == "$PATH"
                    else self.path(part)
                    if part.startswith("/")
                    else part
                    for part in value.split(":")
                ]
                self.env[name] = ":".join(parts)
        elif step.keyword == "WORKDIR":
            self.workdir = Path(self.path(step.arguments))
            self.workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY" and not step.arguments.startswith("--from="):
            *sources, destination = shlex.split(step.arguments)
            target = self.workdir / destination
            for source in sources:
                self._copy(source, target if len(sources) == 1 else target / source)
        elif step.keyword == "RUN":
            completed = subprocess.run(
                ["sh", "-ec", step.arguments],
                cwd=self.workdir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    def _copy(self, source: str, target: Path) -> None:
        origin = ROOT / source
        if source == "constraints.txt" and not origin.exists():
            target.write_text(_installed_versions())
            return
        if origin.is_dir():
            subprocess.run(["cp", "-r", str(origin), str(target)], check=True)
        else:
            target.write_bytes(origin.read_bytes())


def _installed_versions() -> str:
    """Pin what this environment has installed (stand-in for constraints.txt from make lock)."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "".join(line + "\n" for line in frozen.splitlines() if "==" in line)


def _exec_form(arguments: str) -> list[str]:
    text = re.sub(r"^(--\S+\s+)*CMD\s+", "", arguments)  # HEALTHCHECK options, then CMD
    command: list[str] = json.loads(text)
    return command


def test_the_dockerfile_steps_install_migrate_start_and_stop_the_service(tmp_path: Path) -> None:
    replay = _Replay(tmp_path / "image")
    for step in _stage("build"):
        replay.run(step)
    runtime = _stage("runtime")
    for step in runtime:
        if step.keyword in ("ENV", "WORKDIR"):
            replay.run(step)
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    env = {
        **replay.env,
        "MIPOMERSEN_CDS_TRUSTED_ISSUERS": trusted_issuers(),
        "MIPOMERSEN_CDS_PUBLIC_URL": public_url,
        "MIPOMERSEN_CDS_WORKERS": "1",
    }
    assert env["MIPOMERSEN_CDS_DATA_DIR"].startswith(str(tmp_path))
    migrate = subprocess.run(
        ["mipomersen-cds", "db", "upgrade"], cwd=replay.workdir, env=env, capture_output=True
    )
    assert migrate.returncode == 0, migrate.stderr

    def local(command: list[str]) -> list[str]:
        text = json.dumps(command).replace("0.0.0.0", "127.0.0.1").replace("8080", str(port))
        return list(json.loads(text))

    (cmd,) = [step.arguments for step in runtime if step.keyword == "CMD"]
    (healthcheck,) = [step.arguments for step in runtime if step.keyword == "HEALTHCHECK"]
    (stop_signal,) = [step.arguments for step in runtime if step.keyword == "STOPSIGNAL"]
    server = subprocess.Popen(
        local(json.loads(cmd)),
        cwd=replay.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert Path(env["VIRTUAL_ENV"], "bin", "gunicorn").exists()
        health = 1
        for _ in range(300):
            health = subprocess.run(local(_exec_form(healthcheck)), env=env).returncode
            if health == 0 or server.poll() is not None:
                break
            time.sleep(0.2)
        token = sandbox_token(aud=public_url + "/cds-services")
        discovery = get(port, "/cds-services", bearer(token))[0]
    finally:
        server.send_signal(getattr(signal, stop_signal))
        output = server.communicate(timeout=60)[0].decode()
    assert health == 0, output[-3000:]
    assert discovery == 200
    assert server.returncode == 0, output[-3000:]


def test_the_health_check_fails_when_nothing_answers() -> None:
    runtime = _stage("runtime")
    (healthcheck,) = [step.arguments for step in runtime if step.keyword == "HEALTHCHECK"]
    command = json.dumps(_exec_form(healthcheck)).replace("8080", str(free_port()))
    assert subprocess.run(json.loads(command), capture_output=True).returncode != 0
