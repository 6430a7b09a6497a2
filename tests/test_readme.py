"""The README and examples/README.md say what a fresh clone really does.

Commands are taken from the documents themselves: every `.venv/bin/mipomersen-cds` command is
run (in process), every make target named exists, every file named exists, every service URL
is a real service, and the report sample is what the README's own steps produce.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cds_service.cli.main import main
from cds_service.hooks.discovery import SERVICES

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
EXAMPLES_README = (ROOT / "examples" / "README.md").read_text()
_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
# Commands that need a running server, a network or a database that is not there in a test.
# (`report` is run by the report-sample test, after the README's steps made a database.)
# (`synthea/` is the downloaded Synthea sample, not in the repository.)
_NOT_RUN_HERE = ("serve", "db upgrade", "--fhir-server", "dev-token", "report", "synthea/", "$")
_BARE_CLI = re.compile(
    r"(?:^|[\s(])mipomersen-cds (?:evaluate|serve|report|audit|feedback|db|dev-token)"
)


def shell_lines(document: str) -> list[str]:
    lines: list[str] = []
    for block in _SH_BLOCK.findall(document):
        joined = block.replace("\\\n", " ")
        lines += [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]
    return [line for line in lines if not line.startswith("#")]


CLI_LINES = [
    line
    for line in shell_lines(README) + shell_lines(EXAMPLES_README)
    if line.startswith(".venv/bin/mipomersen-cds ") and not any(t in line for t in _NOT_RUN_HERE)
]


# Inside the image the console script is on PATH: commands run in a container are exempt.
_IN_A_CONTAINER = ("docker ", "kubectl ")


def test_no_command_assumes_the_cli_is_on_path() -> None:
    for line in shell_lines(README) + shell_lines(EXAMPLES_README):
        if not line.startswith(_IN_A_CONTAINER):
            assert not _BARE_CLI.search(line), line


@pytest.mark.parametrize("line", CLI_LINES, ids=range(len(CLI_LINES)))
def test_every_cli_command_in_the_docs_runs(
    line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(line)[1:]
    try:
        status = main(argv)
    except SystemExit as exit_info:  # --help, --version
        status = int(exit_info.code or 0)
    assert status == 0, capsys.readouterr().err


def test_every_make_target_in_the_docs_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"`make ([a-z]+)", README)) | {
        line.split()[1] for line in shell_lines(README) if line.startswith("make ")
    }
    assert named and named <= targets


def test_every_example_file_and_service_url_in_the_docs_exists() -> None:
    for document in (README, EXAMPLES_README):
        for path in re.findall(r"examples/[a-z0-9-]+\.json", document):
            assert (ROOT / path).is_file(), path
        ids = {service.id for service in SERVICES}
        for service_id in re.findall(r"/cds-services/(mipomersen-[a-z-]+)", document):
            assert service_id in ids, service_id


def _report_sample() -> str:
    after = README.split(".venv/bin/mipomersen-cds report\n```\n", 1)[1]
    return after.split("```\n", 2)[1].split("\n```")[0].rstrip("\n")


def test_the_report_sample_is_what_the_readmes_steps_produce(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    example = (ROOT / "examples" / "withhold-alt-5x-uln.json").read_bytes()
    sign = "/cds-services/mipomersen-order-sign"
    # "Send a request and read the card", then step 1 of "The loop, end to end".
    client.post(sign, data=example, content_type="application/json")
    card = client.post(sign, data=example, content_type="application/json").get_json()["cards"][0]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {
                        "system": "https://mipomersen-cds.github.io/fhir/CodeSystem/override-reason",
                        "code": "specialist-advised",
                    },
                    "userComment": "Hepatology reviewed today",
                },
                "outcomeTimestamp": "2026-11-23T12:05:00Z",
            }
        ]
    }
    answer = client.post(f"{sign}/feedback", json=feedback)
    assert answer.status_code == 200
    assert json.dumps(answer.get_json()).count('"stored"') == 1
    capsys.readouterr()
    assert main(["report"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == _report_sample()
