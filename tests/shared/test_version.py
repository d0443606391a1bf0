"""One source of the version: pyproject.toml takes it from shared.__version__ (what dashboards and agents compare)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools.config.pyprojecttoml import read_configuration

import shared

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_pyproject_states_no_version_of_its_own():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]


def test_the_built_package_version_is_shared_version():
    assert read_configuration(PYPROJECT, expand=True)["project"]["version"] == shared.__version__
