"""Support for tests and benchmarks, shared by tests/ and bench/ (not part of the product: nothing in dashboard/,
factory_agent/ or shared/ imports it, and pyproject does not install it).

- `inprocess`: plants run in this process behind the dashboard's `PlantChannel` interface.
"""
