"""A dashboard process's one-time start-up (STYLE 13): startup.py decides what runs, bootstrap.py does the
first operator, the federation CA and the configured plants."""
