"""One CDS Hooks call, without HTTP: parse and bound the request, complete the prefetch from
the EHR's FHIR server, apply the rules (`cds_service.rules`) and render the cards."""
