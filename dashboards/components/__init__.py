"""Pure functions returning Dash components."""
