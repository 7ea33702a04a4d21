"""The web service: FastAPI app factory, endpoint factories, error mapping, the map page."""

from geovigie.service.app import create_app, serve_environment, stac_api_url

__all__ = ["create_app", "serve_environment", "stac_api_url"]
