-- Issue #25, review A3: an amended proposal's new notice gives the party the right to a hearing
-- again (Art. 63, 64), so a case can have a 听证通知书 and a hearing per notice. Every one stays
-- in its table; a new notice supersedes the ones of the notice before it. ``hearing_notices``
-- and ``hearings`` become views of the current ones (simple: updatable), so their readers read
-- the hearing of the notice in force.
ALTER TABLE hearing_notices RENAME TO all_hearing_notices;
ALTER TABLE all_hearing_notices ADD COLUMN superseded_at timestamptz;
ALTER TABLE all_hearing_notices ADD COLUMN hearing_notice_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE all_hearing_notices DROP CONSTRAINT hearing_notices_pkey;
ALTER TABLE all_hearing_notices ADD PRIMARY KEY (hearing_notice_id);
CREATE UNIQUE INDEX hearing_notices_current ON all_hearing_notices (case_id)
    WHERE superseded_at IS NULL;
CREATE VIEW hearing_notices AS SELECT * FROM all_hearing_notices WHERE superseded_at IS NULL;

ALTER TABLE hearings RENAME TO all_hearings;
ALTER TABLE all_hearings ADD COLUMN superseded_at timestamptz;
ALTER TABLE all_hearings ADD COLUMN hearing_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE all_hearings DROP CONSTRAINT hearings_pkey;
ALTER TABLE all_hearings ADD PRIMARY KEY (hearing_id);
CREATE UNIQUE INDEX hearings_current ON all_hearings (case_id) WHERE superseded_at IS NULL;
CREATE VIEW hearings AS SELECT * FROM all_hearings WHERE superseded_at IS NULL;
