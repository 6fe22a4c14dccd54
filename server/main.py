"""The ASGI application for `uvicorn server.main:app`, configured from the environment."""

from server.app import create_app
from server.settings import Settings

app = create_app(Settings.from_env())
