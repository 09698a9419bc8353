DROP TABLE authorisations;
DROP TABLE assignments;
DROP TABLE source_status_changes;
DROP TABLE source_identities;
DROP TABLE urn_counters;
DROP TABLE sources;
