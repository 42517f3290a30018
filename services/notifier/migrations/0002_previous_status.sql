-- The status an email had before its latest attempt began: the attempt is now recorded by one
-- INSERT ... ON CONFLICT DO UPDATE, whose RETURNING only sees the new row, and `sending` there
-- means an earlier attempt was interrupted (the email may go out twice).
ALTER TABLE emails ADD COLUMN previous_status text;
