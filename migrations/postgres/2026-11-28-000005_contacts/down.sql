DROP TABLE reviews;
DROP TABLE contact_amendments;
DROP TABLE intelligence_items;
DROP TABLE contacts;
