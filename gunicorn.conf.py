"""gunicorn's settings file (read from the working directory by default): hooks only, the command line keeps the
rest (bind, workers, ...).

worker_exit: a stopping worker writes its buffered heartbeats (dashboard.registry.heartbeats) before it exits; atexit does
the same, this hook also covers a worker that leaves through gunicorn's own exit path.
"""


def worker_exit(server, worker):
    app = getattr(worker, "wsgi", None)  # the Flask app in a worker; None in the master
    if app is not None and hasattr(app, "extensions"):
        from dashboard.registry.heartbeats import flush_all

        flush_all(app)
