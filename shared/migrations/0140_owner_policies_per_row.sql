-- An owner's variants and payments are checked row by row against their order (issue 14).
--
-- 0001 and 0060 wrote "the caller owns the row's order" as EXISTS (SELECT 1 FROM orders o WHERE
-- o.id = <row>.order_id AND o.user_id = auth.uid()). PostgreSQL may run such an EXISTS as a
-- hashed subplan: it reads every order of the caller into a hash, then probes it for each row.
-- It picked that plan whenever its statistics made a user's orders look few (a table that grew
-- since its last ANALYZE), and a cached plan keeps it: with about a thousand orders per user
-- (the bench's), PostgreSQL's CPU per GET /v1/orders/{id} was 0.9-1.2 ms for three variants,
-- and 0.25-0.5 ms with the form below, the API serving 1,236-1,757 GETs/s instead of 889-1,039
-- (16 clients, same stack and data, the policy altered between the runs).
--
-- A scalar subquery correlated to the row is never hashed: each row looks its order up by the
-- primary key, whatever the caller owns. The meaning is the same: the subquery reads orders
-- under orders' own policies, so another user's order gives NULL, and NULL = uid hides the row.
-- The INSERT checks keep their EXISTS: they are evaluated for the rows being inserted, where
-- the same change measured no difference.

ALTER POLICY song_variants_owner_select ON song_variants
    USING ((SELECT o.user_id FROM orders o WHERE o.id = song_variants.order_id)
           = (SELECT auth.uid()));

ALTER POLICY payments_owner_select ON payments
    USING ((SELECT o.user_id FROM orders o WHERE o.id = payments.order_id)
           = (SELECT auth.uid()));
