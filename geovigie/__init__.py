"""geovigie: satellite and aerial imagery analysis for French local authorities."""

__version__ = "0.1.0"
