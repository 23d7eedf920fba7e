-- 0009: brand_name, ai_script_id and the HubSpot fields are one line, for every writer: a line
-- break or control character there is a mistake (a browser cannot even show it in a one-line
-- box, and n8n and HubSpot take these values into headers, prompts and URLs). The prompt
-- stays free text.
--
-- Rows written before hold such characters only by accident (psql, an import): each run of
-- them becomes one space, ends trimmed, in an UPDATE the history records under the migrating
-- actor — so the old value stays in the history and nothing stops the upgrade. The table is
-- locked against writes first, so no such row arrives between the UPDATE and the constraints
-- (NOT VALID: they guard every new write at once; 0010 validates them without a write lock).
LOCK TABLE sites IN SHARE ROW EXCLUSIVE MODE;

UPDATE sites
   SET ai_script_id = CASE WHEN ai_script_id ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]' THEN btrim(regexp_replace(ai_script_id, '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]+', ' ', 'g')) ELSE ai_script_id END,
       brand_name = CASE WHEN brand_name ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]' THEN btrim(regexp_replace(brand_name, '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]+', ' ', 'g')) ELSE brand_name END,
       hubspot_pipeline = CASE WHEN hubspot_pipeline ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]' THEN btrim(regexp_replace(hubspot_pipeline, '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]+', ' ', 'g')) ELSE hubspot_pipeline END,
       hubspot_stage = CASE WHEN hubspot_stage ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]' THEN btrim(regexp_replace(hubspot_stage, '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]+', ' ', 'g')) ELSE hubspot_stage END
 WHERE ai_script_id ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]' OR brand_name ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]' OR hubspot_pipeline ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]' OR hubspot_stage ~ '[\u0000-\u001f\u007f-\u009f\u2028-\u2029]';

ALTER TABLE sites ADD CONSTRAINT sites_ai_script_id_one_line CHECK ((ai_script_id ~ '^[^\u0000-\u001f\u007f-\u009f\u2028-\u2029]*$'::text)) NOT VALID;
ALTER TABLE sites ADD CONSTRAINT sites_brand_name_one_line CHECK ((brand_name ~ '^[^\u0000-\u001f\u007f-\u009f\u2028-\u2029]*$'::text)) NOT VALID;
ALTER TABLE sites ADD CONSTRAINT sites_hubspot_pipeline_one_line CHECK ((hubspot_pipeline ~ '^[^\u0000-\u001f\u007f-\u009f\u2028-\u2029]*$'::text)) NOT VALID;
ALTER TABLE sites ADD CONSTRAINT sites_hubspot_stage_one_line CHECK ((hubspot_stage ~ '^[^\u0000-\u001f\u007f-\u009f\u2028-\u2029]*$'::text)) NOT VALID;
