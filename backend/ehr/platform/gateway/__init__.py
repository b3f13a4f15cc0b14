"""The authenticated FHIR gateway: /fhir in front of HAPI (proxy, policy, compartments)."""
