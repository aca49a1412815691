"""Tracing: the instrumentation library and the span receivers (OTLP, Zipkin).

For an app: ``tracing = tinct.tracing.setup(service_name="orders")`` once at
start-up, ``TinctWSGIMiddleware`` / ``TinctASGIMiddleware`` around the app,
``instrument_clients()`` for outgoing calls, and ``with tinct.tracing.dye(
"user:42"):`` to dye from code.

``dye`` here is the context manager (tracing.dyeing); the module of the dye
model stays importable as ``tinct.tracing.dye`` (``from tinct.tracing.dye
import Dye``), as does ``tinct.tracing.setup`` for ``setup``: submodule
imports go through ``sys.modules``, not this package's attributes.
"""

from tinct.tracing.asgi import TinctASGIMiddleware, starlette_route
from tinct.tracing.dye import Dye
from tinct.tracing.dyeing import DyeRule, StaticDyeMatcher, carry_dye, dye
from tinct.tracing.instrument import ClientInstrumentation, instrument_clients
from tinct.tracing.processors import DyeSpanProcessor
from tinct.tracing.propagator import DyePropagator
from tinct.tracing.sampler import DyeSampler
from tinct.tracing.setup import Tracing, setup
from tinct.tracing.wsgi import TinctWSGIMiddleware

__all__ = [
    "ClientInstrumentation",
    "Dye",
    "DyePropagator",
    "DyeRule",
    "DyeSampler",
    "DyeSpanProcessor",
    "StaticDyeMatcher",
    "TinctASGIMiddleware",
    "TinctWSGIMiddleware",
    "Tracing",
    "carry_dye",
    "dye",
    "instrument_clients",
    "setup",
    "starlette_route",
]
