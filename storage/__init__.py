"""Storage: the only package that speaks SQL (ClickHouse, embedded or server)."""
