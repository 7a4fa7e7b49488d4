"""One router per resource: health, stock, events, predictions, alerts, bundle, metrics."""
