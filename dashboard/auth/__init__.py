"""Who is asking and what they may do (DESIGN §8).

- roles.py: request authentication (session cookie or bearer API token), the role checks of the JSON API
  (`operator_required`) and of the pages (`role_required`), Unauthorized (401) and Forbidden (403), and the
  login manager's user loader;
- accounts.py: password login and operators' API tokens (issue, list, revoke), audited;
- views.py: the "auth" blueprint: the login and logout pages and the API tokens page; forms.py: their forms.

This package's __init__ imports nothing: dashboard.auth.security re-exports from roles.py, and the pages import
services that import dashboard.auth.security.
"""
