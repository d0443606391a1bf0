"""The auth blueprint's forms (Flask-WTF): the login page, the API tokens page and the change of one's password. Here rather than in
dashboard.ui.forms so that auth, which the pages import for their role checks, imports nothing of the pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from dashboard.config import MIN_PASSWORD


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired()], description="e.g. the script that will use it")


class LoginForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=MIN_PASSWORD, max=1024, message=f"at least {MIN_PASSWORD} characters (at most 1024)")],
                        description=f"at least {MIN_PASSWORD} characters (the rule of DASHBOARD_ADMIN_PASSWORD)")
    repeat = PasswordField("New password again", validators=[DataRequired(), EqualTo("new", "the two differ")])
