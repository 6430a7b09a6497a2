"""constraints.txt pins every package the project installs, so installs are reproducible."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent


def pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, separator, version = line.partition("==")
            assert separator, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def required(name: str, extras: frozenset[str], seen: set[str]) -> None:
    """Add `name` and everything it needs (with `extras`) on this platform to `seen`."""
    key = canonicalize_name(name)
    if key in seen:
        return
    seen.add(key)
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        wanted = not marker or any(
            marker.evaluate({**default_environment(), "extra": extra}) for extra in extras | {""}
        )
        if wanted:
            required(requirement.name, frozenset(requirement.extras), seen)


def test_every_package_the_project_needs_is_pinned_at_the_installed_version() -> None:
    needed: set[str] = set()
    required("mipomersen-cds", frozenset({"test"}), needed)
    needed.discard("mipomersen-cds")
    pins = pinned()
    assert sorted(needed - set(pins)) == []  # run `make lock` after changing dependencies
    for name in needed:
        assert metadata.version(name) == pins[name], name


def test_the_build_tools_are_pinned_too() -> None:
    assert {"pip", "setuptools", "wheel"} <= set(pinned())
