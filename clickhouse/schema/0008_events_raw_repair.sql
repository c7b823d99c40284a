-- Scratch copy of events_raw with no views on it. When an insert fails after part of it was
-- committed (ClickHouse died mid-insert), the ingester writes the batch here and fills only the
-- missing tables from it: events_raw by ATTACH PARTITION ... FROM (which runs no view), each rollup
-- by its view's SELECT over this table (ingester/src/recovery.rs). Same columns, partitioning and
-- ordering as events_raw, which ATTACH PARTITION requires; emptied before each use.
CREATE TABLE IF NOT EXISTS events_raw_repair AS events_raw;
