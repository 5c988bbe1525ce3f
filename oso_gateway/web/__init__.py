"""oso_gateway.web: the Flask app factory and its blueprints."""

from oso_gateway.web.app import create_app

__all__ = ["create_app"]
