"""mkdocs hook: links from the docs to the repository's other files.

The pages are also read on a code forge, where `../manifests/rbac/roles.yaml` is a good
link; on the site that file does not exist. Such a link is checked (a missing target
fails the build, like a broken link between pages) and rewritten to `extra.source_url`
+ path when that is set, else shown as the path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

_LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    repo = Path(config["config_file_path"]).resolve().parent
    source_url = str((config.get("extra") or {}).get("source_url") or "")
    here = Path(page.file.abs_src_path).parent

    def rewrite(match: re.Match[str]) -> str:
        text, target = match["text"], match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match[0]
        path, _, anchor = target.partition("#")
        resolved = (here / path).resolve()
        if resolved.is_relative_to(docs) or not resolved.is_relative_to(repo):
            return match[0]  # a page of the site: mkdocs checks it
        if not resolved.exists():
            raise PluginError(f"{page.file.src_path}: link to {target}, which does not exist")
        relative = resolved.relative_to(repo).as_posix()
        if source_url:
            return f"[{text}]({source_url.rstrip('/')}/{relative}{'#' + anchor if anchor else ''})"
        return f"`{relative}`" if text.strip("`") == relative else f"{text} (`{relative}`)"

    return _LINK.sub(rewrite, markdown)
