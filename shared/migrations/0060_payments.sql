-- Payments (issue 15, the contract's "Payments"): with SERENADE_PAYMENTS other than off, an
-- order's variants are generated only once the payment that buys them is paid. One row per
-- order payment and per upsell payment; the webhook events already applied; the variant's
-- link to the payment that buys it. With payments off no row is ever written here and
-- song_variants.payment_id stays NULL. See services/api/payments and shared/payments.

CREATE TYPE payment_kind AS ENUM ('order', 'upsell');
CREATE TYPE payment_status AS ENUM (
    'awaiting', 'paid', 'expired', 'cancelled', 'refund_pending', 'refunded'
);

-- ---------------------------------------------------------------------------------------
-- payments
-- ---------------------------------------------------------------------------------------
CREATE TABLE payments (
    -- Also Stripe's idempotency key, client_reference_id and metadata.payment_id.
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind payment_kind NOT NULL,
    status payment_status NOT NULL DEFAULT 'awaiting',
    -- Minor units (cents) of currency; set by the system from its settings, never by a client.
    amount integer NOT NULL CHECK (amount > 0),
    currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- The provider: 'local' or 'stripe' (what created the checkout and settles refunds).
    provider text NOT NULL CHECK (provider IN ('local', 'stripe')),
    -- Stripe's Checkout Session and payment intent; NULL until known. checkout_url stays NULL
    -- while the provider could not be reached (the payments worker retries).
    provider_session_id text,
    provider_payment_intent text,
    checkout_url text,
    session_attempts integer NOT NULL DEFAULT 0 CHECK (session_attempts >= 0),
    -- Why an unpaid payment lapsed ('cancelled' or 'expired'), kept when money that arrived
    -- late moves it on to refund_pending/refunded: the order stays cancelled.
    lapse_reason text CHECK (lapse_reason IN ('cancelled', 'expired')),
    -- Refunds: when the provider accepted the request (its webhook then says refunded), the
    -- attempts made, and when to try next (NULL: nothing to try, e.g. dead-lettered).
    refund_attempts integer NOT NULL DEFAULT 0 CHECK (refund_attempts >= 0),
    refund_requested_at timestamptz,
    next_refund_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- An awaiting payment past this instant expires (SERENADE_PAYMENT_TTL after creation).
    expires_at timestamptz NOT NULL,
    paid_at timestamptz,
    refunded_at timestamptz,
    CONSTRAINT payments_lapsed_has_reason
        CHECK (status NOT IN ('expired', 'cancelled') OR lapse_reason = status::text),
    CONSTRAINT payments_paid_has_time CHECK (status <> 'paid' OR paid_at IS NOT NULL)
);

-- One payment of kind order per order; at most one upsell awaiting payment at a time.
CREATE UNIQUE INDEX payments_one_per_order_idx ON payments (order_id) WHERE kind = 'order';
CREATE UNIQUE INDEX payments_one_awaiting_upsell_idx ON payments (order_id)
    WHERE kind = 'upsell' AND status = 'awaiting';
CREATE INDEX payments_order_idx ON payments (order_id, created_at);
-- charge.refunded may name the payment by its payment intent only.
CREATE INDEX payments_payment_intent_idx ON payments (provider_payment_intent)
    WHERE provider_payment_intent IS NOT NULL;
-- The payments worker's queues: awaiting payments by expiry, refunds due.
CREATE INDEX payments_awaiting_idx ON payments (expires_at) WHERE status = 'awaiting';
CREATE INDEX payments_refund_due_idx ON payments (next_refund_at)
    WHERE status = 'refund_pending' AND next_refund_at IS NOT NULL;

CREATE TRIGGER payments_touch BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- The payment that buys a variant (NULL with payments off, and for rows made before).
ALTER TABLE song_variants ADD COLUMN payment_id uuid REFERENCES payments (id);
CREATE INDEX song_variants_payment_idx ON song_variants (payment_id) WHERE payment_id IS NOT NULL;

-- A dead letter about a payment (a refund that keeps failing, a mismatch, an unknown payment):
-- replaying a refund row tries the refund again; the row is resolved once it is refunded.
ALTER TABLE failed_jobs ADD COLUMN payment_id uuid;
CREATE INDEX failed_jobs_open_payment_idx ON failed_jobs (payment_id)
    WHERE resolved_at IS NULL AND payment_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- payment_webhook_events: each provider event id takes effect at most once
-- ---------------------------------------------------------------------------------------
CREATE TABLE payment_webhook_events (
    -- Stripe's event id (evt_...): a repeat finds it taken and changes nothing.
    event_id text PRIMARY KEY CHECK (char_length(event_id) BETWEEN 1 AND 255),
    event_type text NOT NULL,
    -- The payment it named, when it named one that exists.
    payment_id uuid,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- Privileges: owners read their own payments; service_role alone writes.
-- ---------------------------------------------------------------------------------------
REVOKE ALL ON payments, payment_webhook_events FROM PUBLIC;

GRANT SELECT ON payments TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON payments, payment_webhook_events TO service_role;

ALTER TABLE payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE payments FORCE ROW LEVEL SECURITY;
ALTER TABLE payment_webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_webhook_events FORCE ROW LEVEL SECURITY;

CREATE POLICY payments_owner_select ON payments FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM orders o
                   WHERE o.id = payments.order_id AND o.user_id = (SELECT auth.uid())));

CREATE POLICY payments_service_all ON payments FOR ALL TO service_role
    USING (true) WITH CHECK (true);

CREATE POLICY payment_webhook_events_service_all ON payment_webhook_events FOR ALL
    TO service_role USING (true) WITH CHECK (true);
