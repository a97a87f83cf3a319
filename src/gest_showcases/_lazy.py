"""Lazy public names for the package and its subpackages (PEP 562).

`import gest_showcases` (or a subpackage) must not import torch or transformers: a name is imported from its
module the first time it is read, then cached on the package.
"""

import sys


def lazy_exports(package: str, exports: dict[str, str]):
    """`__getattr__`, `__dir__` and `__all__` for `package`, whose public `exports` map a name to the module
    (relative to `package`, e.g. `"generation.modeling_pc2l"`) that defines it."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        from importlib import import_module  # here, not at the top: importing the package stays free

        value = getattr(import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)  # later reads skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, sorted(exports)
