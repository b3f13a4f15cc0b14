"""Entry points: the API app (``api.create_app``), the ``ehr`` command line (``cli``) and the demo
data (``seed``). Nothing else of ``ehr`` imports them."""
