"""EHR platform layer: orchestration service in front of HAPI FHIR JPA."""
