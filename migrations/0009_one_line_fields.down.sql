-- Reverts 0009: the constraints go; the values 0009 made one line stay so (the history keeps
-- what they were).
-- squawk-ignore ban-drop-constraint
ALTER TABLE sites DROP CONSTRAINT sites_hubspot_stage_one_line;
-- squawk-ignore ban-drop-constraint
ALTER TABLE sites DROP CONSTRAINT sites_hubspot_pipeline_one_line;
-- squawk-ignore ban-drop-constraint
ALTER TABLE sites DROP CONSTRAINT sites_brand_name_one_line;
-- squawk-ignore ban-drop-constraint
ALTER TABLE sites DROP CONSTRAINT sites_ai_script_id_one_line;
