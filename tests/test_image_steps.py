"""The Dockerfile's install and start steps, run as a plain shell script in a fresh directory.

No image can be built or pulled here, so the Dockerfile is read with BuildKit's own parser (the
`dockerfile` package wraps it) and replayed on this machine:
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
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dockerfile
import pytest

from tests.conftest import free_port
from tests.test_server import get
from tests.tokens import bearer, sandbox_token, trusted_issuers

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction as BuildKit's own parser reads it (the `dockerfile` package)."""

    stage: str
    keyword: str
    flags: tuple[str, ...]
    values: tuple[str, ...]


def read_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Return the Dockerfile's instructions, each with the name of its stage."""
    instructions: list[Instruction] = []
    stage = ""
    for command in dockerfile.parse_file(str(path)):
        keyword = command.cmd.upper()
        if keyword == "FROM":
            stage = command.value[-1]  # FROM image AS name
        instructions.append(Instruction(stage, keyword, command.flags, command.value))
    return instructions


def _one(stage: str, keyword: str) -> Instruction:
    (step,) = [step for step in _stage(stage) if step.keyword == keyword]
    return step


def _stage(stage: str) -> list[Instruction]:
    return [step for step in read_dockerfile() if step.stage == stage]


def test_the_image_is_multi_stage_slim_and_runs_as_a_user_of_its_own() -> None:
    steps = read_dockerfile()
    (base,) = [s.values[0] for s in steps if s.keyword == "ARG" and "PYTHON_IMAGE" in s.values[0]]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim-\w+", base)
    assert [s.stage for s in steps if s.keyword == "FROM"] == ["build", "runtime"]
    user = _one("runtime", "USER").values[0].split(":")[0]
    assert user not in ("0", "root")
    create_user = _one("runtime", "RUN").values[0]
    assert f"--uid {user}" in create_user and "useradd --system" in create_user
    copy = _one("runtime", "COPY")
    assert (copy.flags, copy.values) == (("--from=build",), ("/opt/mipomersen-cds",) * 2)
    healthcheck = _one("runtime", "HEALTHCHECK").values
    assert healthcheck[0] == "CMD" and "/healthz" in " ".join(healthcheck)
    installs = [s.values[0] for s in _stage("build") if "pip" in " ".join(s.values)]
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
            pairs = zip(step.values[::2], step.values[1::2], strict=True)
            for name, value in pairs:
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
            self.workdir = Path(self.path(step.values[0]))
            self.workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY" and not step.flags:
            *sources, destination = step.values
            target = self.workdir / destination
            for source in sources:
                self._copy(source, target if len(sources) == 1 else target / source)
        elif step.keyword == "RUN":
            completed = subprocess.run(
                ["sh", "-ec", step.values[0]],
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


@pytest.mark.slow  # builds a virtual environment and serves from it
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

    healthcheck = list(_one("runtime", "HEALTHCHECK").values[1:])  # after CMD
    stop_signal = _one("runtime", "STOPSIGNAL").values[0]
    server = subprocess.Popen(
        local(list(_one("runtime", "CMD").values)),
        cwd=replay.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert Path(env["VIRTUAL_ENV"], "bin", "gunicorn").exists()
        health = 1
        for _ in range(300):
            health = subprocess.run(local(healthcheck), env=env).returncode
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
    healthcheck = list(_one("runtime", "HEALTHCHECK").values[1:])
    command = json.dumps(healthcheck).replace("8080", str(free_port()))
    assert subprocess.run(json.loads(command), capture_output=True).returncode != 0
