"""FactoryFL shared package: what the dashboard and the factory agents both import."""

__version__ = "0.3.0"
