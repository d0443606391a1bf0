"""The dashboard's service layer: what the JSON API (dashboard.api) and the pages (dashboard.ui) both do, in one
place each. A route parses its input, calls a service and renders or jsonifies the answer.

- experiments.py: create an experiment, change its status, look one up, its detail (rounds, privacy spent);
- plants.py: the registered plants (factories) as the pages and GET /factories read them, their recent CPU,
  the experiments each takes part in, a plant's activity, the connectivity check and the floor history;
- models.py: the model of an experiment's round as a bundle, and released models (release, roll back, the
  registry, a release's bytes for its plants).

The write path of plants (registration, heartbeats) is not here: dashboard.api.factories and dashboard.registry.heartbeats.
"""
