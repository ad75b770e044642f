"""The docs site: the API reference pages match the models (like crdgen --check), and
`mkdocs build --strict` passes, so a broken link or a page missing from the build fails
`make test`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from mkdocs.exceptions import PluginError

from kubenova_operator.api import ALL_KINDS
from kubenova_operator.api.docgen import main, page_path, render

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "docs" / "hooks"))
import repo_links  # noqa: E402


def test_reference_pages_match_the_models() -> None:
    assert main(["--check"]) == 0, "run python -m kubenova_operator.api.docgen"


def test_reference_has_every_field() -> None:
    """Spot check that the generator walks the whole schema: nested and list fields."""
    tenant = render(ALL_KINDS[0])
    for field in ("`spec.owners[].kind`", "`spec.budget.hard`", "`status.conditions[].reason`"):
        assert field in tenant
    for kind in ALL_KINDS:
        assert page_path(kind).exists()


def _page(tmp_path: Path, text: str) -> str:
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / "manifests").mkdir(exist_ok=True)
    (tmp_path / "manifests" / "x.yaml").write_text("")
    page = SimpleNamespace(
        file=SimpleNamespace(abs_src_path=str(tmp_path / "docs" / "p.md"), src_path="p.md")
    )
    config = {
        "docs_dir": str(tmp_path / "docs"),
        "config_file_path": str(tmp_path / "mkdocs.yml"),
        "extra": {},
    }
    return str(repo_links.on_page_markdown(text, page, config, None))


def test_links_into_the_repository_are_checked(tmp_path: Path) -> None:
    assert _page(tmp_path, "[x](../manifests/x.yaml)") == "x (`manifests/x.yaml`)"
    assert _page(tmp_path, "[a](other.md) [b](https://e.org)") == "[a](other.md) [b](https://e.org)"
    with pytest.raises(PluginError, match="does not exist"):
        _page(tmp_path, "[x](../manifests/gone.yaml)")


def test_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "tenants" / "index.html").exists()
