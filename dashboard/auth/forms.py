"""The auth blueprint's forms (Flask-WTF): the login page and the API tokens page. Here rather than in
dashboard.ui.forms so that auth, which the pages import for their role checks, imports nothing of the pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Email


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired()], description="e.g. the script that will use it")


class LoginForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])
