-- The product change feed (catalog.v1 WatchProductChanges): every statement
-- that changes or deletes products announces which ones on the channel
-- `catalog_product_changes`, as comma-separated ids. PostgreSQL delivers a
-- notification only when its transaction commits, in commit order, to every
-- listening replica; a trigger catches every writer, the service's own
-- statements as well as an operator's manual fix. One notification per
-- statement (transition tables), not per row: a group-committed batch of
-- reservations is one message. A payload past NOTIFY's 8000-byte limit is
-- sent as `*` (every product may have changed).
CREATE FUNCTION products_announce_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    SELECT string_agg(DISTINCT id::text, ',') INTO ids FROM changed_products;
    IF ids IS NOT NULL THEN
        IF octet_length(ids) > 7900 THEN
            ids := '*';
        END IF;
        PERFORM pg_notify('catalog_product_changes', ids);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER products_announce_updates
    AFTER UPDATE ON products
    REFERENCING NEW TABLE AS changed_products
    FOR EACH STATEMENT EXECUTE FUNCTION products_announce_changes();

CREATE TRIGGER products_announce_deletes
    AFTER DELETE ON products
    REFERENCING OLD TABLE AS changed_products
    FOR EACH STATEMENT EXECUTE FUNCTION products_announce_changes();
