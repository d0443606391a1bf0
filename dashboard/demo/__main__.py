"""`python -m dashboard.demo`: the entry point `make demo` calls; the demo is dashboard.demo.run."""

import runpy

if __name__ == "__main__":
    runpy.run_module("dashboard.demo.run", run_name="__main__", alter_sys=True)
