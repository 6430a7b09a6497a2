"""`mipomersen-cds dev-token`: the README's local-authentication walkthrough, end to end."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.cli.main import main
from tests.fhir_builders import hook_request

ROOT = Path(__file__).parent.parent
PUBLIC_URL = "http://127.0.0.1:8080"
SIGN_URL = f"{PUBLIC_URL}/cds-services/mipomersen-order-sign"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_minted_token_is_accepted_by_a_service_trusting_the_printed_issuers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, issuers, err = run(["dev-token", "--trusted-issuers"], capsys)
    assert status == 0 and "made a local ES384 key" in err
    status, token, _ = run(["dev-token", SIGN_URL], capsys)
    assert status == 0
    app = create_app(
        {
            "TRUSTED_ISSUERS": issuers.strip(),
            "PUBLIC_URL": PUBLIC_URL,
            "DATA_DIR": str(tmp_path / "data"),
        },
        environ={},
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token.strip()}"}
    response = client.post(
        "/cds-services/mipomersen-order-sign", json=hook_request(), headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    replayed = client.post(
        "/cds-services/mipomersen-order-sign", json=hook_request(), headers=headers
    )
    assert replayed.status_code == 401  # each token once: mint one per call


def test_the_key_is_made_once_and_readable_by_its_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["dev-token", "--trusted-issuers"], capsys)
    key_file = tmp_path / "data" / "dev-token-es384.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_bytes()
    _, again, err = run(["dev-token", "--trusted-issuers"], capsys)
    assert key_file.read_bytes() == first and err == ""
    document = json.loads(again)
    (entry,) = document.values()
    assert "d" not in entry["jwks"]["keys"][0]  # the public half only


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dev-token"], "give the URL"),
        (["dev-token", "cds-services/x"], "is not a URL"),
        (["dev-token", SIGN_URL, "--lifetime", "0"], "--lifetime"),
    ],
    ids=["no-url", "not-a-url", "zero-lifetime"],
)
def test_unusable_dev_token_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(argv, capsys)
    assert (status, out) == (2, "")
    assert message in err


def test_the_readme_walkthrough_is_five_lines_using_these_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Authentication locally, in five lines", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.strip().splitlines()
    assert len(lines) == 5
    assert "dev-token --trusted-issuers" in lines[0]
    assert f"MIPOMERSEN_CDS_PUBLIC_URL={PUBLIC_URL}" in lines[1]
    assert "MIPOMERSEN_CDS_AUTH=required" in lines[1]
    assert lines[3] == f"URL=$MIPOMERSEN_CDS_PUBLIC_URL{SIGN_URL.removeprefix(PUBLIC_URL)}"
    assert "dev-token $URL" in lines[4] and "examples/withhold-alt-5x-uln.json" in lines[4]
