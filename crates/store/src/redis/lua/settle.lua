-- Settles one delivery (`settle_one`).
-- ARGV: member, kind (delivered|failed|retry|released|expired|skipped), at,
--       attempt JSON or '', now_ms, node
return settle_one(ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6])
