"""The model registry: trained versions as local folders (``models/<version>/``), and their
publication in Redis, where every worker of every host can load them."""
