"""The factory agent: one PySyft datasite per plant, registered with the FactoryFL dashboard."""

from shared import __version__ as AGENT_VERSION

__all__ = ["AGENT_VERSION"]
