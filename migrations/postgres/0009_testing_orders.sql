-- Testing-service orders (送样检测): a booking of kind 'testing' for a testing service, done on
-- one of the unit's instruments (so its income counts for that instrument). It takes no time
-- slot (live = 0, so it never blocks the calendar) and is completed with a report file.
ALTER TABLE bookings ADD COLUMN kind TEXT NOT NULL DEFAULT 'slot';
ALTER TABLE bookings ADD COLUMN service_id BIGINT REFERENCES services(id);
ALTER TABLE bookings ADD COLUMN sample_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN report_upload_id BIGINT REFERENCES uploads(id);
CREATE INDEX bookings_service ON bookings(service_id);
