"""Support for tests and benchmarks, shared by tests/ and bench/ (not part of the product: nothing in dashboard/,
factory_agent/ or shared/ imports it, and pyproject does not install it; bench/ imports it and never tests/).

- `harness`: real processes on free loopback ports, stopped by PID: a dashboard (`Dashboard`), factory agents
  (`Agent`), `free_port`, `stop`, `run_predict`, and the credentials they share (ENROLL, API_TOKEN, ADMIN);
- `postgres`: a throwaway PostgreSQL cluster on a free loopback port (the production topology's tests and
  bench/heartbeats.py);
- `inprocess`: plants run in this process behind the dashboard's `PlantChannel` interface;
- `federation`: a whole experiment on in-process plants through the dashboard's round workflow (bench/quality.py).
"""
