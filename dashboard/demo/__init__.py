"""`make demo` / `python -m dashboard.demo`: the dashboard and three simulated plants on this machine (run.py)."""
