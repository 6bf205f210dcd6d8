"""The docs site: Sphinx with MyST Markdown (`make docs`; docs/architecture/decisions/docs-site.md).

The source folder is the repository's root (`sphinx-build -c docs . _build/site`), so that
the README, CHANGELOG.md, DEVELOPERS.md and the evidence beside bench/ and chaos/ are pages
at their own paths and every relative link works the same on the site as in the
repository. `include_patterns` says which files are pages; `make docs` fails on any
warning, so a broken link or anchor fails the build.
"""

from __future__ import annotations

project = "humantask"
copyright = "the humantask authors; Apache-2.0"  # noqa: A001 (Sphinx's own name)
author = "the humantask authors"

extensions = ["myst_parser", "sphinxcontrib.mermaid"]
source_suffix = {".md": "markdown"}
root_doc = "docs/index"
include_patterns = [
    "README.md",
    "CHANGELOG.md",
    "DEVELOPERS.md",
    "docs/**",
    "bench/README.md",
    "chaos/README.md",
    "tests/e2e/fuzz/README.md",
    # Figures the pages show (bench/README.md and others link the evidence).
    "bench/results/*.png",
]
exclude_patterns = ["_build", ".venv", "docs/conf.py"]

# Headings get anchors as GitHub makes them (`#one-retry-and-never-a-third-attempt`), so
# the same links work in the repository and on the site; MyST checks each one.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]
# ```mermaid fences are diagrams (sphinxcontrib-mermaid), as GitHub shows them.
myst_fence_as_directive = ["mermaid"]
# A link to a file that is not a page (a script, a figure, a result) points at the
# repository's copy instead of being copied into the site.
myst_url_schemes = ["http", "https", "mailto"]

html_theme = "furo"
html_title = "humantask"
html_copy_source = False
html_show_sourcelink = False
# The site opens on the docs' front page.
html_extra_path = ["_extra"]  # relative to this folder


def setup(app: object) -> None:
    """Examples marked `jsonc` (JSON that the README's test leaves alone) are JSON."""
    from pygments.lexers.data import JsonLexer

    app.add_lexer("jsonc", JsonLexer)  # type: ignore[attr-defined]
