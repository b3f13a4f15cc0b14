"""The platform layer: identity (``auth``), ``tenancy``, the ``audit`` trail, the FHIR ``gateway``
and ``health``. It builds on ``ehr.core`` and ``ehr.fhir``; business modules build on it."""
