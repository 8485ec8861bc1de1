"""multi_model package."""
