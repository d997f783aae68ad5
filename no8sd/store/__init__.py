"""Everything that speaks SQL, and nothing else does: the database (pragmas, migrations,
the single writer, readers), typed rows, the cache, and one module per group of tables."""
