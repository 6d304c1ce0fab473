-- Issue #25, review B7 (行政处罚法 Art. 45: 行政机关必须充分听取当事人的意见，对当事人提出的事实、
-- 理由和证据，应当进行复核；当事人提出的事实、理由或者证据成立的，行政机关应当采纳): each statement's
-- 复核意见 (adopted or not, with the officer's reasons); a penalty decision waits for every one.
-- The statement's attachments (scans, photos, PDFs) stay in its ``images`` list, each with its
-- media type.
ALTER TABLE statements
    ADD COLUMN review_adopted boolean,
    ADD COLUMN review_opinion text,
    ADD COLUMN reviewed_by text,
    ADD COLUMN reviewed_at timestamptz,
    ADD CONSTRAINT statements_review_whole CHECK (
        (review_adopted IS NULL) = (review_opinion IS NULL)
        AND (review_opinion IS NULL) = (reviewed_at IS NULL));
