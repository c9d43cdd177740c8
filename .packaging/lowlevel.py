"""Low-level helpers of the primitives."""

# Shipped in the wheel as aiologic/lowlevel.py, for type checkers: the module
# that runs is made by aiologic.py itself (`_make_lowlevel`) and registered in
# sys.modules while `aiologic` is imported, so `import aiologic.lowlevel` finds
# it there and never loads this file (were it loaded, it would re-export the
# same objects). test_aiologic.py checks that these names are that module's
# `__all__`.

from . import MISSING as MISSING
from . import async_checkpoint as async_checkpoint
from . import async_sleep as async_sleep
from . import current_async_library as current_async_library
from . import current_async_library_tlocal as current_async_library_tlocal
from . import current_green_library as current_green_library
from . import current_green_library_tlocal as current_green_library_tlocal
from . import disable_checkpoints as disable_checkpoints
from . import enable_checkpoints as enable_checkpoints
from . import green_checkpoint as green_checkpoint
from . import green_sleep as green_sleep

__all__ = (
    "current_green_library",
    "current_async_library",
    "current_green_library_tlocal",
    "current_async_library_tlocal",
    "green_checkpoint",
    "async_checkpoint",
    "enable_checkpoints",
    "disable_checkpoints",
    "green_sleep",
    "async_sleep",
    "MISSING",
)
