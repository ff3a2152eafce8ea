-- A canonical description of everything the cte_ctel extension owns, from the catalogs, for
-- comparing an upgraded database with a fresh install: one line per fact, sorted, no OIDs.
-- pg_dump cannot do this: it skips extension members. Run with psql -X -q -t -A.
WITH ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'cte_ctel'
), members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT c.oid, c.relname, c.relkind FROM pg_class c
      JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
), procs AS (
    SELECT p.oid FROM pg_proc p
      JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
), types AS (
    SELECT t.oid FROM pg_type t
      JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
), facts(fact) AS (
    SELECT 'extension ' || e.extname || ' ' || e.extversion || ' schema ' || e.extnamespace::regnamespace
           || ' relocatable ' || e.extrelocatable
      FROM pg_extension e WHERE e.extname = 'cte_ctel'
    UNION ALL
    -- Tables marked for pg_dump, with their filters.
    SELECT 'config ' || c.relname || ' where ' || COALESCE(NULLIF(x.cond, ''), '-')
      FROM pg_extension e
      CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS x(rel, cond)
      JOIN pg_class c ON c.oid = x.rel
     WHERE e.extname = 'cte_ctel'
    UNION ALL
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM members m
    UNION ALL
    SELECT format('relation %s kind %s persistence %s owner %s acl %s options %s comment %s',
                  c.relname, c.relkind, c.relpersistence, pg_get_userbyid(c.relowner),
                  COALESCE((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a), '-'),
                  COALESCE(array_to_string(c.reloptions, ','), '-'),
                  COALESCE(obj_description(c.oid, 'pg_class'), '-'))
      FROM pg_class c JOIN rels r ON r.oid = c.oid
    UNION ALL
    -- Columns in their order (by rank among live columns: a dropped column leaves a gap).
    SELECT format('column %s.%s #%s %s notnull %s default %s identity %s generated %s collation %s comment %s',
                  r.relname, a.attname,
                  rank() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  COALESCE(pg_get_expr(ad.adbin, ad.adrelid), '-'),
                  COALESCE(NULLIF(a.attidentity, ''), '-'), COALESCE(NULLIF(a.attgenerated, ''), '-'),
                  COALESCE((SELECT collname FROM pg_collation WHERE oid = a.attcollation), '-'),
                  COALESCE(col_description(a.attrelid, a.attnum), '-'))
      FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s.%s %s', r.relname, co.conname, pg_get_constraintdef(co.oid))
      FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
      FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL
    SELECT format('trigger %s enabled %s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s.%s %s', r.relname, p.polname, p.polcmd)
      FROM pg_policy p JOIN rels r ON r.oid = p.polrelid
    UNION ALL
    SELECT format('view %s %s', r.relname, pg_get_viewdef(r.oid))
      FROM rels r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence %s type %s start %s increment %s min %s max %s cycle %s',
                  r.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
                  s.seqmax, s.seqcycle)
      FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
    UNION ALL
    SELECT format('function %s owner %s acl %s comment %s definition %s',
                  p.oid::regprocedure, pg_get_userbyid(p.proowner),
                  COALESCE((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), '-'),
                  COALESCE(obj_description(p.oid, 'pg_proc'), '-'),
                  -- Aggregates have no function definition to print.
                  CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END)
      FROM pg_proc p JOIN procs f ON f.oid = p.oid
    UNION ALL
    SELECT format('type %s kind %s base %s notnull %s default %s acl %s comment %s',
                  t.oid::regtype, t.typtype, COALESCE(t.typbasetype::regtype::text, '-'),
                  t.typnotnull, COALESCE(t.typdefault, '-'),
                  COALESCE((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(t.typacl) a), '-'),
                  COALESCE(obj_description(t.oid, 'pg_type'), '-'))
      FROM pg_type t JOIN types x ON x.oid = t.oid
    UNION ALL
    SELECT format('domain constraint %s.%s %s', co.contypid::regtype, co.conname, pg_get_constraintdef(co.oid))
      FROM pg_constraint co JOIN types x ON x.oid = co.contypid
    UNION ALL
    SELECT format('schema %s owner %s acl %s comment %s', n.nspname, pg_get_userbyid(n.nspowner),
                  COALESCE((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(n.nspacl) a), '-'),
                  COALESCE(obj_description(n.oid, 'pg_namespace'), '-'))
      FROM pg_namespace n WHERE n.nspname = 'cte_ctel'
)
SELECT fact FROM facts ORDER BY fact;
