-- The time zone a visitor chose for dates (NULL: the panel's PANEL_TIME_ZONE).
ALTER TABLE sessions ADD COLUMN time_zone text;
