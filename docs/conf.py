"""Sphinx configuration of the sb3_fpo documentation.

Build (from the repository root, after ``pip install -e ".[docs,zoo]"``: the API pages import ``sb3_fpo.zoo``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build needs no network: no intersphinx inventories are fetched.
"""

import os
import sys

# The package is imported from the source tree, so that autodoc documents the code next to these pages
sys.path.insert(0, os.path.abspath(".."))

with open(os.path.join(os.path.dirname(__file__), "..", "sb3_fpo", "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

# -- Project information -----------------------------------------------------

project = "sb3_fpo"
author = "sb3_fpo contributors"
copyright = "sb3_fpo contributors"
version = __version__
release = __version__

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx_rtd_theme",
    "myst_parser",  # guide/manual.md, the manual in Markdown
]
# No sphinx.ext.intersphinx: it downloads inventories at build time, and the build must work offline.

templates_path: list[str] = []
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
language = "en"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
pygments_style = "sphinx"

# -- autodoc -----------------------------------------------------------------

# The docstrings are reST (``:param x:``), so no napoleon. Members that sb3_fpo does not override keep SB3's
# docstrings (``learn``, ``predict``, ``save``, ...), as in SB3's and sb3-contrib's docs.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = True
autoclass_content = "class"
# Every cross-reference must resolve (-n with -W in CI), except types of other packages: without intersphinx there is
# no inventory to resolve them against. Type variables and aliases of signatures are not documented objects.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|gymnasium|stable_baselines3|collections|pathlib|io|optuna)(\..*)?"),
    (r"py:class", r"(sb3_fpo\.fpo\.)?SelfFPO|MaybeCallback"),
]

# -- Options for HTML output -------------------------------------------------

html_theme = "sphinx_rtd_theme"
html_theme_options = {"navigation_depth": 3}
html_static_path = ["_static"]
html_css_files = ["css/custom.css"]
html_title = f"sb3_fpo {__version__}"
htmlhelp_basename = "sb3_fpo_doc"
