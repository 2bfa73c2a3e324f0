-- Booking plus (issue 17): qualifications, multi-day instruments, check-in/out and no-shows,
-- weekly repeats, waitlists with time-limited offers, and booking suspensions.
ALTER TABLE instruments ADD COLUMN requires_qualification BIGINT NOT NULL DEFAULT 0;
ALTER TABLE instruments ADD COLUMN multi_day BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN checked_in_at BIGINT;
ALTER TABLE bookings ADD COLUMN checked_out_at BIGINT;
ALTER TABLE bookings ADD COLUMN no_show_at BIGINT;
ALTER TABLE bookings ADD COLUMN series_id BIGINT;
CREATE INDEX bookings_no_show ON bookings(status, start_at);

CREATE TABLE instrument_qualifications (
    id BIGSERIAL PRIMARY KEY,
    instrument_id BIGINT NOT NULL REFERENCES instruments(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    expires_on TEXT NOT NULL,
    granted_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    UNIQUE (instrument_id, user_id)
);

CREATE TABLE booking_waitlist (
    id BIGSERIAL PRIMARY KEY,
    instrument_id BIGINT NOT NULL REFERENCES instruments(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'waiting',
    offered_at BIGINT,
    offer_expires_at BIGINT,
    booking_id BIGINT REFERENCES bookings(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX booking_waitlist_slot ON booking_waitlist(instrument_id, status, start_at);

CREATE TABLE booking_suspensions (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    until_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    trigger_booking_id BIGINT NOT NULL UNIQUE REFERENCES bookings(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX booking_suspensions_unit ON booking_suspensions(unit_id, until_at);
