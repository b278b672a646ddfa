"""Python SDK for Sonaray, a distributed audio inference cluster."""

from sonaray_client.types import *  # noqa: F403

__version__ = "0.1.0"
