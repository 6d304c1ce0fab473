-- Issue #25 (review D.11): a document's number starts again at 1 each year, per kind of document
-- ('notice', 'hearing_notice'), as in 湘交执超通〔2027〕1号; the prefix is the agency's code.
CREATE TABLE document_numbers (
    kind  text NOT NULL,
    year  integer NOT NULL,
    last  integer NOT NULL,
    PRIMARY KEY (kind, year)
);
