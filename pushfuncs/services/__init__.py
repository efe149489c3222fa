"""Services: registration, sending, delivery, tokens, sweep. Plain async Python, no azure.functions."""
