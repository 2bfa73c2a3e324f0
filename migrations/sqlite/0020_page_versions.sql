-- Page cache versions (issue 19). Every write to a table the cached public pages are built
-- from bumps that table's counter in the same transaction (triggers, so no write path can
-- forget it); a node serves a cached page only while the sum of the counters is the one it
-- was rendered at, so a write through any node is seen by every node's next request.
CREATE TABLE page_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL DEFAULT 0
);
INSERT INTO page_versions (name, version) VALUES ('instruments', 0), ('units', 0), ('services', 0), ('platforms', 0), ('achievements', 0), ('articles', 0), ('instrument_photos', 0), ('uploads', 0);
CREATE TRIGGER page_versions_instruments_insert AFTER INSERT ON instruments BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'instruments';
END;
CREATE TRIGGER page_versions_instruments_update AFTER UPDATE ON instruments BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'instruments';
END;
CREATE TRIGGER page_versions_instruments_delete AFTER DELETE ON instruments BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'instruments';
END;
CREATE TRIGGER page_versions_units_insert AFTER INSERT ON units BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'units';
END;
CREATE TRIGGER page_versions_units_update AFTER UPDATE ON units BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'units';
END;
CREATE TRIGGER page_versions_units_delete AFTER DELETE ON units BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'units';
END;
CREATE TRIGGER page_versions_services_insert AFTER INSERT ON services BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'services';
END;
CREATE TRIGGER page_versions_services_update AFTER UPDATE ON services BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'services';
END;
CREATE TRIGGER page_versions_services_delete AFTER DELETE ON services BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'services';
END;
CREATE TRIGGER page_versions_platforms_insert AFTER INSERT ON platforms BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'platforms';
END;
CREATE TRIGGER page_versions_platforms_update AFTER UPDATE ON platforms BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'platforms';
END;
CREATE TRIGGER page_versions_platforms_delete AFTER DELETE ON platforms BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'platforms';
END;
CREATE TRIGGER page_versions_achievements_insert AFTER INSERT ON achievements BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'achievements';
END;
CREATE TRIGGER page_versions_achievements_update AFTER UPDATE ON achievements BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'achievements';
END;
CREATE TRIGGER page_versions_achievements_delete AFTER DELETE ON achievements BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'achievements';
END;
CREATE TRIGGER page_versions_articles_insert AFTER INSERT ON articles BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'articles';
END;
CREATE TRIGGER page_versions_articles_update AFTER UPDATE ON articles BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'articles';
END;
CREATE TRIGGER page_versions_articles_delete AFTER DELETE ON articles BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'articles';
END;
CREATE TRIGGER page_versions_instrument_photos_insert AFTER INSERT ON instrument_photos BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'instrument_photos';
END;
CREATE TRIGGER page_versions_instrument_photos_update AFTER UPDATE ON instrument_photos BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'instrument_photos';
END;
CREATE TRIGGER page_versions_instrument_photos_delete AFTER DELETE ON instrument_photos BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'instrument_photos';
END;
CREATE TRIGGER page_versions_uploads_insert AFTER INSERT ON uploads BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'uploads';
END;
CREATE TRIGGER page_versions_uploads_update AFTER UPDATE ON uploads BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'uploads';
END;
CREATE TRIGGER page_versions_uploads_delete AFTER DELETE ON uploads BEGIN
    UPDATE page_versions SET version = version + 1 WHERE name = 'uploads';
END;
