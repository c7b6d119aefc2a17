"""Build script: setup.py stays the build so the package can ship default.conf.

The configuration template lives once, at the top of the tree, where operators
and reviewers find it; ``build_py`` copies it into the built ``bandersnatch``
package so an installed copy can write it out with ``importlib.resources``.
"""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def read_version() -> str:
    """``__version__`` from the package, read as text so building never imports it."""
    text = (HERE / "bandersnatch" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("bandersnatch/__init__.py has no __version__")
    return match.group(1)


def read_requirements(name: str) -> list[str]:
    """Requirement lines of ``name``, without comments and blank lines."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


class BuildPyWithDefaultConf(build_py):
    """build_py that also puts the top-level default.conf into the built package."""

    def _shipped_conf(self) -> Path:
        return Path(self.build_lib) / "bandersnatch" / "default.conf"

    def _editable(self) -> bool:
        # An editable install runs from the checkout, where config.py finds the top-level file.
        return bool(getattr(self, "editable_mode", False))

    def run(self) -> None:
        super().run()
        if not self._editable():
            self.mkpath(str(self._shipped_conf().parent))
            self.copy_file(str(HERE / "default.conf"), str(self._shipped_conf()))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs: list[str] = list(super().get_outputs(include_bytecode))
        if not self._editable():
            outputs.append(str(self._shipped_conf()))
        return outputs


setup(
    name="bandersnatch",
    version=read_version(),
    description="Mirror client for the Python Package Index (PyPI)",
    long_description=(HERE / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks", "benchmarks.*"]),
    install_requires=read_requirements("requirements.txt"),
    # Publishing to an S3-compatible bucket (storage-backend = s3): pip install bandersnatch[s3]
    extras_require={"s3": ["boto3>=1.36"]},
    entry_points={"console_scripts": ["bandersnatch = bandersnatch.cli:main"]},
    cmdclass={"build_py": BuildPyWithDefaultConf},
    zip_safe=False,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Operating System :: POSIX",
        "Environment :: Console",
        "Intended Audience :: System Administrators",
        "Topic :: System :: Archiving :: Mirroring",
    ],
)
