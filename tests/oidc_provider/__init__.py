"""A real OpenID Connect provider for the sign-on tests: django-oauth-toolkit in its own tiny
Django project, run as a separate process on a loopback port with its own SQLite database
and an RS256 key made at start (see `serve.py`)."""
