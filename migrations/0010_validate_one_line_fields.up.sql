-- 0010: validates 0009's constraints. VALIDATE takes only a SHARE UPDATE EXCLUSIVE lock:
-- reads and writes go on while it scans; 0009 left no row that breaks them.
ALTER TABLE sites VALIDATE CONSTRAINT sites_ai_script_id_one_line;
ALTER TABLE sites VALIDATE CONSTRAINT sites_brand_name_one_line;
ALTER TABLE sites VALIDATE CONSTRAINT sites_hubspot_pipeline_one_line;
ALTER TABLE sites VALIDATE CONSTRAINT sites_hubspot_stage_one_line;
