-- The control stations' signal logs (信号台): what each showed vessels bound up or down into a
-- controlled section, from when. 冲关 is judged against it (《内河交通安全管理条例》 Art. 20, 68).
CREATE TABLE control_signals (
    section_id  text NOT NULL,
    direction   text NOT NULL CHECK (direction IN ('up', 'down')),
    ts          timestamptz NOT NULL,
    shown       text NOT NULL CHECK (shown IN ('go', 'stop')),
    station     text,
    PRIMARY KEY (section_id, direction, ts)
);
