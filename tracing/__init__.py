"""Tracing: span receivers (OTLP, Zipkin) and, later, the instrumentation library."""
