-- Occasion reminders (serenade.occasions.upcoming): "once per order and year" is kept by the
-- database, not by a scheduler's memory, so several processes and restarts can never send a
-- reminder twice. See shared/reminders.py.

-- ---------------------------------------------------------------------------------------
-- occasion_reminders: one row per order and year whose reminder was sent
-- ---------------------------------------------------------------------------------------
CREATE TABLE occasion_reminders (
    -- A deleted order takes its reminder history with it.
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- The year of next_date: the primary key makes a second reminder for the same occurrence a
    -- conflict (INSERT ... ON CONFLICT DO NOTHING tells the sender it was already sent).
    occasion_year integer NOT NULL,
    -- The date the reminder announced (29 February falls on 28 February in common years).
    next_date date NOT NULL,
    -- The event that announced it, also the outbox row's event_id: the two can be joined.
    event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, occasion_year),
    CONSTRAINT occasion_reminders_year_of_next_date
        CHECK (occasion_year = EXTRACT(YEAR FROM next_date))
);

-- Reminders look orders up by month and day (an anniversary ignores the year), nearest day
-- first and in id order within a day, in bounded batches. orders_occasion_date_idx orders by
-- year first, so it cannot answer "every 14 March"; this one can, as one range scan per day.
-- The expression must stay identical to the one in shared/reminders.py to be used.
CREATE INDEX orders_occasion_month_day_idx
    ON orders ((EXTRACT(MONTH FROM occasion_date)::integer * 100
                + EXTRACT(DAY FROM occasion_date)::integer), id)
    WHERE occasion_date IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- Privileges: the system's alone. A guard row is a fact and is never updated; deleting one
-- (service_role, by hand) is how an operator lets a reminder be sent again.
-- ---------------------------------------------------------------------------------------
REVOKE ALL ON occasion_reminders FROM PUBLIC;

GRANT SELECT, INSERT, DELETE ON occasion_reminders TO service_role;

-- Row-level security, enabled and forced like every table (the owner is no exception).
ALTER TABLE occasion_reminders ENABLE ROW LEVEL SECURITY;
ALTER TABLE occasion_reminders FORCE ROW LEVEL SECURITY;

CREATE POLICY occasion_reminders_service_all ON occasion_reminders FOR ALL TO service_role
    USING (true) WITH CHECK (true);
