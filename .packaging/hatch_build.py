"""hatchling build hook: what the wheel holds (see pyproject.toml).

A regular wheel maps the one module into a package that carries py.typed:

    aiologic/__init__.py   aiologic.py, byte for byte
    aiologic/lowlevel.py   .packaging/lowlevel.py
    aiologic/py.typed      .packaging/py.typed

An editable install (`pip install -e .`) adds nothing: `dev-mode-dirs` puts
the checkout on sys.path, so `import aiologic` runs the checkout's aiologic.py
as it is edited (a copy in site-packages would go stale).
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = {
    "aiologic.py": "aiologic/__init__.py",
    ".packaging/lowlevel.py": "aiologic/lowlevel.py",
    ".packaging/py.typed": "aiologic/py.typed",
}


class PackageHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "editable":
            build_data["force_include"].update(PACKAGE)
