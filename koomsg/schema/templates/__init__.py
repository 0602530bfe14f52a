"""Templates: the enterprise's own, public ones, preview, and operator review."""
