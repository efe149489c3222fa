"""The Functions entry point: set up telemetry, build the app and register the blueprints. Nothing else."""

import os

import azure.functions as func

from pushfuncs import (
    api_audience,
    api_feedback,
    api_health,
    api_installations,
    api_notifications,
    api_openapi,
    delivery_trigger,
    fanout_trigger,
    timers,
)
from pushfuncs.telemetry import configure_telemetry

configure_telemetry(os.environ)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(api_installations.bp)
app.register_functions(api_notifications.bp)
app.register_functions(api_audience.bp)
app.register_functions(api_feedback.bp)
app.register_functions(api_health.bp)
app.register_functions(api_openapi.bp)
app.register_functions(delivery_trigger.bp)
app.register_functions(fanout_trigger.bp)
app.register_functions(timers.bp)
