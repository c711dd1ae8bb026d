-- Stray charges (the contract's "Payments": money is never kept for nothing): a payment already
-- paid that is paid a second time, by another payment intent, is refunded at once. The payment
-- keeps its first, legitimate charge (status, variants untouched); the second charge is a row
-- here, refunded by the payments worker through the same provider interface as a payment's
-- refund, and marked refunded by its own charge.refunded (found by its payment intent).
CREATE TABLE stray_charges (
    -- Also the refund's idempotency key at the provider and the local refund event's id.
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The payment it paid a second time.
    payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    -- The second charge's payment intent: one row per intent, however often the event comes.
    payment_intent text NOT NULL UNIQUE,
    amount integer NOT NULL CHECK (amount > 0),
    currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status payment_status NOT NULL DEFAULT 'refund_pending'
        CHECK (status IN ('refund_pending', 'refunded')),
    -- As on payments: attempts made, when to try next (NULL: nothing to try, e.g.
    -- dead-lettered), when the provider accepted the request, when it said refunded.
    refund_attempts integer NOT NULL DEFAULT 0 CHECK (refund_attempts >= 0),
    next_refund_at timestamptz DEFAULT now(),
    refund_requested_at timestamptz,
    refunded_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stray_charges_payment_idx ON stray_charges (payment_id);
CREATE INDEX stray_charges_refund_due_idx ON stray_charges (next_refund_at)
    WHERE status = 'refund_pending' AND next_refund_at IS NOT NULL;

CREATE TRIGGER stray_charges_touch BEFORE UPDATE ON stray_charges
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Privileges: service_role alone reads and writes. Owners get nothing: what they see of their
-- money is the payment (paid, as it was); a stray charge is the system's and the operator's
-- business (the console and the CLI read as service_role), and its refund reaches the payer
-- through the provider, not through serenade.
REVOKE ALL ON stray_charges FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON stray_charges TO service_role;

ALTER TABLE stray_charges ENABLE ROW LEVEL SECURITY;
ALTER TABLE stray_charges FORCE ROW LEVEL SECURITY;

CREATE POLICY stray_charges_service_all ON stray_charges FOR ALL TO service_role
    USING (true) WITH CHECK (true);
