-- Plate sightings the lead stage looks back at: every read plate for as long as a later sighting
-- could make it half of a cloned-plate pair (the longest drive between two sites), and the hub
-- sightings of vehicles without an operating licence for the illegal-operation window.
-- Written by the lead stage before it answers a batch, read by every lead worker: state that
-- outlives a batch lives here, not in a worker's memory, so no offset is held back for it.
CREATE TABLE sightings (
    capture_id  text PRIMARY KEY,
    plate       text NOT NULL,
    site_id     text NOT NULL,
    ts          timestamptz NOT NULL,
    keep_until  timestamptz NOT NULL,
    sighting    json NOT NULL
);
CREATE INDEX sightings_plate_ts ON sightings (plate, ts);
CREATE INDEX sightings_keep_until ON sightings (keep_until);
