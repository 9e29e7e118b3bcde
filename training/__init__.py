"""The offline job: interaction logs to evaluated, versioned, published models."""
