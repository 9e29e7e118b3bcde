"""The Flask side: app factory, errors, auth, logs, metrics, gunicorn."""
