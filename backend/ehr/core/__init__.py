"""The core layer: settings, the error hierarchy and its handlers, intake, middleware, logging and
metrics, the app's database and Redis resources. It imports nothing else of ``ehr``."""
