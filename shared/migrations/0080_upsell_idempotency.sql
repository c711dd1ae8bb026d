-- The +1 upsell takes an Idempotency-Key, as ordering does (the contract's "Payments"): the
-- same key on the same order returns the variant (and its payment) the first request made,
-- never a second variant or a second checkout. The key is kept on the variant it made.
ALTER TABLE song_variants ADD COLUMN idempotency_key text
    CHECK (char_length(idempotency_key) BETWEEN 1 AND 255);

CREATE UNIQUE INDEX song_variants_idempotency_key_idx ON song_variants (order_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The owner inserts the upsell's variant with its key (the insert policy still checks the
-- order is theirs and the variant pending).
GRANT INSERT (idempotency_key) ON song_variants TO authenticated;
