"""recsvc: onsite personalization and recommendation microservice."""

__version__ = "0.1.0"
