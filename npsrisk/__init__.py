"""npsrisk package."""
