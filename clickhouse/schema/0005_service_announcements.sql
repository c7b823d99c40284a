-- The newer DVM-like families join the directory: ContextVM server announcements (11316),
-- encrypted DVM announcements (11999) and ContextVM capability lists (tools, resources, prompts),
-- newest per address like NIP-89 announcements and profiles. These kinds are replaceable, so the
-- parser leaves their d_tag empty and the address is (pubkey, kind). A view of its own rather than
-- a changed announcements_mv: replacing that one would miss what is inserted in between.
CREATE MATERIALIZED VIEW IF NOT EXISTS service_announcements_mv TO announcements AS
SELECT pubkey, kind, d_tag, created_at, event_id, content, announced_kinds
FROM events_raw
WHERE role IN ('service_announcement', 'capabilities');
