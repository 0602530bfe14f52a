"""Templates: dynamic parameters, sanitised rich bodies, rendering, review and public templates."""
