"""``python -m universal_service`` runs the command-line interface."""

from .cli import app

app(prog_name="universal-service")
