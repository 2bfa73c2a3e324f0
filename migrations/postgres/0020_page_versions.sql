-- Page cache versions (issue 19). Every write to a table the cached public pages are built
-- from bumps that table's counter in the same transaction (statement triggers, so no write
-- path can forget it); a node serves a cached page only while the sum of the counters is
-- the one it was rendered at, so a write through any node is seen by every node's next request.
CREATE TABLE page_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL DEFAULT 0
);

CREATE FUNCTION page_versions_bump() RETURNS trigger AS $$
BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = TG_TABLE_NAME;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
INSERT INTO page_versions (name, version) VALUES ('instruments', 0), ('units', 0), ('services', 0), ('platforms', 0), ('achievements', 0), ('articles', 0), ('instrument_photos', 0), ('uploads', 0);
CREATE TRIGGER page_versions_instruments AFTER INSERT OR UPDATE OR DELETE ON instruments
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_units AFTER INSERT OR UPDATE OR DELETE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_services AFTER INSERT OR UPDATE OR DELETE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_platforms AFTER INSERT OR UPDATE OR DELETE ON platforms
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_achievements AFTER INSERT OR UPDATE OR DELETE ON achievements
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_articles AFTER INSERT OR UPDATE OR DELETE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_instrument_photos AFTER INSERT OR UPDATE OR DELETE ON instrument_photos
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_uploads AFTER INSERT OR UPDATE OR DELETE ON uploads
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
