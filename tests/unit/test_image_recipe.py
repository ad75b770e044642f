"""The e2e image build's stand-in base: which Debian mirror debootstrap uses (the one
this machine's apt is configured with) and what its cache key depends on."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubenova_e2e import image
from kubenova_e2e.image import mirror_from_sources

DEB822 = """Types: deb
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_sources_give_the_main_archive() -> None:
    sources = {"/etc/apt/sources.list.d/debian.sources": DEB822}
    assert mirror_from_sources(sources) == "http://mirror.example/debian"


def test_security_first_and_disabled_entries_are_passed_over() -> None:
    disabled = "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n"
    security_first = "Types: deb deb-src\nURIs: http://sec.example/debian-security\n"
    security_first += "Suites: bookworm-security\n\nTypes: deb\nURIs: https://m.example/d\n"
    security_first += "Suites: trixie\n"
    sources = {"/a/0.sources": disabled, "/a/1.sources": security_first}
    assert mirror_from_sources(sources) == "https://m.example/d"


def test_one_line_format_with_options() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian bookworm main\n"
    )
    assert mirror_from_sources({"/etc/apt/sources.list": text}) == "http://ftp.example/debian"


def test_no_debian_archive_gives_none() -> None:
    assert mirror_from_sources({"/etc/apt/sources.list": "deb cdrom:[x]/ bookworm main\n"}) is None
    assert mirror_from_sources({}) is None


def test_the_key_follows_the_ca_bundle_put_into_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("one")
    monkeypatch.setattr(image, "HOST_CA_BUNDLE", bundle)
    first = image.base_key()
    assert image.base_key() == first
    bundle.write_text("two")
    assert image.base_key() != first
    assert image.base_image_name().endswith(f":{image.base_key()}")
