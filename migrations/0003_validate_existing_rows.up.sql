-- 0003: checks the rows written before 0002 against its rules, then validates the
-- constraints. VALIDATE takes only a SHARE UPDATE EXCLUSIVE lock: reads and writes go on
-- while it scans.
--
-- A row that breaks a rule stops the migration here (the database stays at 0002, whose
-- constraints already protect every new write) with the offending keys named, so they can be
-- fixed and `cabinet-db migrate up` rerun.
DO $$
DECLARE
    con record;
    key_column text;
    offenders text;
    found bigint;
    report text := '';
BEGIN
    FOR con IN
        SELECT c.conrelid::regclass AS tab, c.conname, pg_get_expr(c.conbin, c.conrelid) AS expr
          FROM pg_constraint c
         WHERE c.conrelid IN ('sites'::regclass, 'users'::regclass)
           AND c.contype = 'c' AND NOT c.convalidated
         ORDER BY 1, 2
    LOOP
        key_column := CASE con.tab WHEN 'sites'::regclass THEN 'site_id' ELSE 'user_id' END;
        EXECUTE format(
            'SELECT count(*), string_agg(quote_literal(k), '', '') FILTER (WHERE n <= 10)
               FROM (SELECT %I AS k, row_number() OVER (ORDER BY %I) AS n FROM %s WHERE NOT (%s)) bad',
            key_column, key_column, con.tab, con.expr)
        INTO found, offenders;
        IF found > 0 THEN
            report := report || format(E'\n  %s: %s row(s) break %s, e.g. %s = %s',
                                       con.tab, found, con.conname, key_column, offenders);
        END IF;
    END LOOP;
    IF report <> '' THEN
        RAISE EXCEPTION 'rows written before migration 0002 break its rules:%', report
            USING HINT = 'fix or delete those rows (e.g. UPDATE sites SET created_at = now() WHERE created_at = ''infinity''), then run cabinet-db migrate up again; cabinet-db migrate check lists the rules';
    END IF;
END
$$;

ALTER TABLE sites VALIDATE CONSTRAINT sites_site_id_format;
ALTER TABLE sites VALIDATE CONSTRAINT sites_created_at_range;
ALTER TABLE users VALIDATE CONSTRAINT users_user_id_format;
ALTER TABLE users VALIDATE CONSTRAINT users_email_format;
ALTER TABLE users VALIDATE CONSTRAINT users_first_seen_range;
ALTER TABLE users VALIDATE CONSTRAINT users_last_seen_range;
