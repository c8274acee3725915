"""``python -m bot`` is the ``dutybot`` command."""

from bot.cli import app

app()
