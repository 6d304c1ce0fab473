-- Issue #25 (review B6): 集体讨论 of a major case by the agency's 负责人 (行政处罚法 Art. 57 (2))
CREATE TABLE case_discussions (
    discussion_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id        text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    participants   text[] NOT NULL,
    minutes        text NOT NULL,
    recorded_by    text NOT NULL,
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX case_discussions_case ON case_discussions (case_id);
