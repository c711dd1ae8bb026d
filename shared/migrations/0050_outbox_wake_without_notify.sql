-- The outbox relays are woken over core NATS now (shared/outbox.py), not by NOTIFY: PostgreSQL
-- serialises the commits of every transaction that notifies (a cluster-wide lock held through
-- the WAL flush), and every transaction that writes the outbox paid for it.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
