-- jobtrail PostgreSQL schema 2: `jobtrail copy` writes a history that is
-- already complete (every status change comes with it), so the trigger that
-- records changes must not add its own rows while a copy replaces a job. The
-- copy's transaction says so with `SET LOCAL jobtrail.copying = 'on'` (a
-- setting any role may set, gone at the end of the transaction); every other
-- write, a sync's or one run by hand, is recorded as before.
CREATE OR REPLACE FUNCTION jobtrail_record_status_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('jobtrail.copying', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO job_status_changes
        (source, project_id, job_id, old_status, new_status, raw_status, fail_reason, observed_at, sync_id)
    VALUES
        (NEW.source, NEW.project_id, NEW.job_id, OLD.status, NEW.status, NEW.raw_status, NEW.fail_reason,
         NEW.last_seen_at, NEW.last_sync_id);
    RETURN NULL;
END
$$;
