"""The C extensions, declared here only because whether they are optional is decided at build time.

pyproject.toml holds every other piece of metadata. Without a compiler an install still succeeds
(the generated Python codec and aiokafka's own records take over); with
``AGENTFLUX_REQUIRE_NATIVE=1`` (CI, ``.ci/python-matrix``) an extension that does not build
fails the install instead of leaving the slow path in place without a word.
"""

import os

from setuptools import Extension, setup

_REQUIRED = os.environ.get("AGENTFLUX_REQUIRE_NATIVE", "") not in {"", "0"}
# Warnings stay visible (and an undeclared function is an error: it would be an int at run time).
_FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
_EXTENSIONS = {
    "agentflux.schemas._native": "agentflux/schemas/_native.c",  # the Avro codec of events
    "agentflux.consumers._batches": "agentflux/consumers/_batches.c",  # the record-batch reader
    "agentflux.producers._records": "agentflux/producers/_records.c",  # the record writer
}

setup(
    ext_modules=[
        Extension(name, [source], extra_compile_args=_FLAGS, optional=not _REQUIRED)
        for name, source in _EXTENSIONS.items()
    ]
)
