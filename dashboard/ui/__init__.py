"""HTML pages for operators (the JSON API is dashboard.api; the login and API tokens pages are dashboard.auth).

The "ui" blueprint's pages live by concern: factories.py (the plants), lifecycle.py (their labels and
decommissioning), experiments.py, audit.py, api_docs.py (the rendered OpenAPI document and the favicon); filters.py
holds the template filters, policy_view.py the plant policy's labels and units, forms.py every page's forms. The
plant floor's pages (registry.py), plant enrolment
(enrolment.py) and the operators page (operators.py) are blueprints of their own. Pages call dashboard.services.
"""

from flask import Blueprint

bp = Blueprint("ui", __name__)

# the modules whose routes and filters join the blueprint (imported here, before create_app registers it)
from dashboard.ui import (api_docs, audit, experiment_tools, experiments, factories, filters, lifecycle,  # noqa: E402,F401
                          policy_view)
